//! A small reader for the C part of COM headers (mingw-w64's, hand-written or WIDL output,
//! and ours): it follows `#if`/`#ifdef` as a C compiler would (without `__cplusplus`, so
//! the C declarations are seen, not the C++ classes), collects object-like `#define`s, and
//! picks out vtable structs, other structs and unions, enums, `DEFINE_GUID` and
//! `extern const IID` declarations. Anything else is skipped.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, Result, bail, ensure};

use super::cexpr::{self, Scope};
use crate::headers::model::GuidValue;

/// One vtable slot: name, return type and parameter types after `This`, each type
/// normalized (single spaces, `T x[]` as `T *`, mingw's `WINBOOL` as `BOOL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub name: String,
    pub returns: String,
    pub params: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub ty: String,
}

/// Where a declaration was found: the header file's name.
pub type Origin = String;

#[derive(Debug, Default)]
pub struct Declarations {
    /// Interface name (the vtable's name without `Vtbl`) → its slots.
    pub vtables: BTreeMap<String, (Vec<Slot>, Origin)>,
    /// `IID_`/`CLSID_`/`LIBID_` names → value (`None` when only declared `extern`).
    pub guids: BTreeMap<String, (Option<GuidValue>, Origin)>,
    /// Numeric `#define`s and enumerators → value.
    pub constants: BTreeMap<String, (i128, Origin)>,
    /// Struct and union typedef names (other than vtables) → fields in order.
    pub records: BTreeMap<String, (Vec<Field>, Origin)>,
    macros: HashMap<String, Macro>,
}

#[derive(Debug, Clone)]
enum Macro {
    Object(String),
    Function,
}

impl Scope for Declarations {
    fn value_of(&self, name: &str) -> Result<Option<i128>> {
        if let Some((value, _)) = self.constants.get(name) {
            return Ok(Some(*value));
        }
        match self.macros.get(name) {
            Some(Macro::Object(body)) if !body.is_empty() => {
                cexpr::evaluate(body, self, false).map(Some)
            }
            _ => Ok(None),
        }
    }

    fn is_defined(&self, name: &str) -> bool {
        self.macros.contains_key(name)
    }
}

impl Declarations {
    /// Reads one header into these declarations (macros carry over between headers, as
    /// they would in one translation unit).
    pub fn read(&mut self, file_name: &str, text: &str) -> Result<()> {
        let code = self
            .preprocess(file_name, &strip_comments(text))
            .with_context(|| format!("preprocessing {file_name}"))?;
        let tokens = tokenize(&code);
        self.scan(&tokens, file_name)
            .with_context(|| format!("reading the declarations of {file_name}"))
    }

    /// Follows the conditionals, records `#define`s and returns the active non-directive
    /// text.
    fn preprocess(&mut self, file_name: &str, text: &str) -> Result<String> {
        struct Branch {
            parent_active: bool,
            taken: bool,
            active: bool,
        }
        let mut branches: Vec<Branch> = Vec::new();
        let mut code = String::new();
        let text = text.replace("\\\n", " ");
        for line in text.lines() {
            let active = branches.last().is_none_or(|b| b.active);
            let Some(directive) = line.trim_start().strip_prefix('#') else {
                if active {
                    code.push_str(line);
                    code.push('\n');
                }
                continue;
            };
            let directive = directive.trim();
            let (keyword, rest) = directive
                .split_once(|c: char| c.is_whitespace())
                .map_or((directive, ""), |(k, r)| (k, r.trim()));
            match keyword {
                "if" | "ifdef" | "ifndef" => {
                    let condition = active && self.condition(keyword, rest)?;
                    branches.push(Branch {
                        parent_active: active,
                        taken: condition,
                        active: condition,
                    });
                }
                "elif" => {
                    let branch = branches.last_mut().context("#elif without #if")?;
                    let condition = branch.parent_active
                        && !branch.taken
                        && cexpr::evaluate(rest, &*self, true)? != 0;
                    let branch = branches.last_mut().context("#elif without #if")?;
                    branch.active = condition;
                    branch.taken |= condition;
                }
                "else" => {
                    let branch = branches.last_mut().context("#else without #if")?;
                    branch.active = branch.parent_active && !branch.taken;
                    branch.taken = true;
                }
                "endif" => {
                    branches.pop().context("#endif without #if")?;
                }
                "define" if active => self.define(rest)?,
                "undef" if active => {
                    self.macros.remove(rest);
                }
                _ => {}
            }
        }
        ensure!(branches.is_empty(), "{file_name}: unterminated #if");
        Ok(code)
    }

    fn condition(&self, keyword: &str, rest: &str) -> Result<bool> {
        Ok(match keyword {
            "ifdef" => self.is_defined(rest),
            "ifndef" => !self.is_defined(rest),
            _ => cexpr::evaluate(rest, self, true)? != 0,
        })
    }

    fn define(&mut self, rest: &str) -> Result<()> {
        let name_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let name = &rest[..name_end];
        ensure!(!name.is_empty(), "#define without a name: {rest:?}");
        let after = &rest[name_end..];
        if after.starts_with('(') {
            self.macros.insert(name.to_owned(), Macro::Function);
        } else {
            self.macros
                .insert(name.to_owned(), Macro::Object(after.trim().to_owned()));
        }
        Ok(())
    }

    /// After all headers are read: every object-like macro whose body is an integer
    /// constant expression becomes a constant.
    pub fn evaluate_defines(&mut self, origins: &HashMap<String, Origin>) {
        let names: Vec<String> = self.macros.keys().cloned().collect();
        for name in names {
            if self.constants.contains_key(&name) {
                continue;
            }
            if let Ok(Some(value)) = self.value_of(&name) {
                let origin = origins.get(&name).cloned().unwrap_or_default();
                self.constants.insert(name, (value, origin));
            }
        }
    }

    /// The header each `#define` appeared in, for messages.
    pub fn define_origins(file_name: &str, text: &str) -> HashMap<String, Origin> {
        strip_comments(text)
            .lines()
            .filter_map(|line| {
                let rest = line.trim_start().strip_prefix('#')?.trim_start();
                let rest = rest.strip_prefix("define")?.trim_start();
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                Some((name, file_name.to_owned()))
            })
            .collect()
    }

    fn scan(&mut self, tokens: &[String], origin: &str) -> Result<()> {
        let mut i = 0;
        while i < tokens.len() {
            let token = tokens[i].as_str();
            if token == "typedef" {
                i = self.typedef(tokens, i + 1, origin)?;
            } else if token == "DEFINE_GUID" {
                i = self.define_guid(tokens, i + 1, origin)?;
            } else if let Some((name, next)) = extern_guid(tokens, i) {
                self.guids
                    .entry(name)
                    .or_insert_with(|| (None, origin.to_owned()));
                i = next;
            } else {
                i += 1;
            }
        }
        Ok(())
    }

    /// `typedef struct|union|enum [tag] { … } Name;` (other typedefs are skipped).
    fn typedef(&mut self, tokens: &[String], start: usize, origin: &str) -> Result<usize> {
        let kind = tokens.get(start).map(String::as_str);
        let mut i = start + 1;
        if !matches!(kind, Some("struct" | "union" | "enum")) {
            return Ok(skip_past(tokens, start, ";"));
        }
        if tokens.get(i).is_some_and(|t| is_identifier(t)) {
            i += 1;
        }
        if tokens.get(i).map(String::as_str) != Some("{") {
            return Ok(skip_past(tokens, start, ";"));
        }
        let close = matching(tokens, i)?;
        let body = &tokens[i + 1..close];
        let name = tokens
            .get(close + 1)
            .filter(|t| is_identifier(t))
            .with_context(|| format!("a typedef body without a name near {:?}", &tokens[start..i]))?
            .clone();
        match kind {
            Some("enum") => self.enumerators(body, origin)?,
            _ if name.ends_with("Vtbl") => {
                let interface = name.trim_end_matches("Vtbl").to_owned();
                let slots = slots(body, &interface).with_context(|| format!("in {name}"))?;
                self.vtables.insert(interface, (slots, origin.to_owned()));
            }
            _ => {
                let fields = fields(body).with_context(|| format!("in {name}"))?;
                self.records.insert(name, (fields, origin.to_owned()));
            }
        }
        Ok(skip_past(tokens, close, ";"))
    }

    fn enumerators(&mut self, body: &[String], origin: &str) -> Result<()> {
        let mut next_value = 0;
        for item in split_top_level(body, ",") {
            let Some(name) = item.first() else { continue };
            let value = if item.get(1).map(String::as_str) == Some("=") {
                cexpr::evaluate(&item[2..].join(" "), &*self, false)
                    .with_context(|| format!("the value of {name}"))?
            } else {
                next_value
            };
            self.constants
                .insert(name.clone(), (value, origin.to_owned()));
            next_value = value + 1;
        }
        Ok(())
    }

    fn define_guid(&mut self, tokens: &[String], start: usize, origin: &str) -> Result<usize> {
        ensure!(
            tokens.get(start).map(String::as_str) == Some("("),
            "DEFINE_GUID without arguments"
        );
        let close = matching(tokens, start)?;
        let args = split_top_level(&tokens[start + 1..close], ",");
        ensure!(
            args.len() == 12,
            "DEFINE_GUID takes 12 arguments, found {}",
            args.len()
        );
        let name = args[0].join("");
        let numbers: Vec<i128> = args[1..]
            .iter()
            .map(|arg| cexpr::evaluate(&arg.join(" "), &*self, false))
            .collect::<Result<_>>()
            .with_context(|| format!("DEFINE_GUID({name}, …)"))?;
        let byte = |n: i128| u8::try_from(n).context("GUID byte out of range");
        let value = GuidValue {
            data1: u32::try_from(numbers[0]).context("Data1 out of range")?,
            data2: u16::try_from(numbers[1]).context("Data2 out of range")?,
            data3: u16::try_from(numbers[2]).context("Data3 out of range")?,
            data4: [
                byte(numbers[3])?,
                byte(numbers[4])?,
                byte(numbers[5])?,
                byte(numbers[6])?,
                byte(numbers[7])?,
                byte(numbers[8])?,
                byte(numbers[9])?,
                byte(numbers[10])?,
            ],
        };
        self.guids.insert(name, (Some(value), origin.to_owned()));
        Ok(skip_past(tokens, close, ";"))
    }
}

/// `extern const IID Name;` (also `EXTERN_C`, `CLSID`, `GUID`, `struct GUID`) at `at`: the
/// name and the index after the `;`.
fn extern_guid(tokens: &[String], at: usize) -> Option<(String, usize)> {
    let words: Vec<&str> = tokens
        .get(at..(at + 6).min(tokens.len()))?
        .iter()
        .map(String::as_str)
        .collect();
    match words.as_slice() {
        [
            "extern" | "EXTERN_C",
            "const",
            "IID" | "CLSID" | "GUID",
            name,
            ";",
            ..,
        ] => Some(((*name).to_owned(), at + 5)),
        ["extern" | "EXTERN_C", "const", "struct", "GUID", name, ";"] => {
            Some(((*name).to_owned(), at + 6))
        }
        _ => None,
    }
}

/// `RET (CALLCONV *Name)(This, params…);` members, with `BEGIN_INTERFACE`/`END_INTERFACE`
/// ignored.
fn slots(body: &[String], interface: &str) -> Result<Vec<Slot>> {
    let body: Vec<String> = body
        .iter()
        .filter(|t| !matches!(t.as_str(), "BEGIN_INTERFACE" | "END_INTERFACE"))
        .cloned()
        .collect();
    let mut slots = Vec::new();
    for member in split_top_level(&body, ";") {
        if member.is_empty() {
            continue;
        }
        let open = member
            .iter()
            .position(|t| t == "(")
            .context("a vtable member that is not a function pointer")?;
        let close = matching(&member, open)?;
        let name = member[open + 1..close]
            .iter()
            .rfind(|t| is_identifier(t))
            .context("a function pointer without a name")?
            .clone();
        let params_open = close + 1;
        ensure!(
            member.get(params_open).map(String::as_str) == Some("("),
            "{name}: no parameter list"
        );
        let params_close = matching(&member, params_open)?;
        let mut params = split_top_level(&member[params_open + 1..params_close], ",")
            .into_iter()
            .map(|param| parameter_type(&param))
            .collect::<Result<Vec<_>>>()
            .with_context(|| format!("{name}: parameters"))?;
        let this = if params.is_empty() {
            String::new()
        } else {
            params.remove(0)
        };
        ensure!(
            this == format!("{interface} *"),
            "{name}: the first parameter is `{this}`, not `{interface} *This`"
        );
        slots.push(Slot {
            name,
            returns: normalize_type(&member[..open]),
            params,
        });
    }
    Ok(slots)
}

/// The type of one parameter declaration, without its name.
fn parameter_type(param: &[String]) -> Result<String> {
    if param.len() == 1 && param[0] == "void" {
        bail!("a `void` parameter list has no parameters");
    }
    let (declaration, array) = match param {
        [rest @ .., open, close] if open == "[" && close == "]" => (rest, true),
        _ => (param, false),
    };
    let (name, ty) = declaration
        .split_last()
        .context("an empty parameter declaration")?;
    ensure!(is_identifier(name), "a parameter without a name: {param:?}");
    let mut ty = normalize_type(ty);
    if array {
        ty.push_str(" *");
    }
    Ok(ty)
}

fn fields(body: &[String]) -> Result<Vec<Field>> {
    let mut fields = Vec::new();
    for member in split_top_level(body, ";") {
        if member.is_empty() {
            continue;
        }
        let name_at = match member.iter().position(|t| t == "[") {
            Some(bracket) => bracket.checked_sub(1).context("a field without a name")?,
            None => member.len() - 1,
        };
        let name = &member[name_at];
        ensure!(is_identifier(name), "a field without a name: {member:?}");
        let mut ty = normalize_type(&member[..name_at]);
        if name_at + 1 < member.len() {
            ty.push(' ');
            ty.push_str(&member[name_at + 1..].join(""));
        }
        fields.push(Field {
            name: name.clone(),
            ty,
        });
    }
    Ok(fields)
}

/// Types spelled the same way on both sides: tokens joined by single spaces, calling
/// conventions dropped, `struct X` read as `X` (every tag here has a typedef of the same
/// name), and mingw-w64's `WINBOOL` read as the SDK's `BOOL`.
fn normalize_type(tokens: &[String]) -> String {
    tokens
        .iter()
        .filter(|t| {
            !matches!(
                t.as_str(),
                "STDMETHODCALLTYPE" | "WINAPI" | "CONST_VTBL" | "struct" | "union" | "enum"
            )
        })
        .map(|t| if t == "WINBOOL" { "BOOL" } else { t.as_str() })
        .collect::<Vec<_>>()
        .join(" ")
}

fn split_top_level(tokens: &[String], separator: &str) -> Vec<Vec<String>> {
    let mut parts = vec![Vec::new()];
    let mut depth = 0i32;
    for token in tokens {
        match token.as_str() {
            "(" | "{" | "[" => depth += 1,
            ")" | "}" | "]" => depth -= 1,
            _ => {}
        }
        if depth == 0 && token == separator {
            parts.push(Vec::new());
        } else if let Some(last) = parts.last_mut() {
            last.push(token.clone());
        }
    }
    parts.retain(|part| !part.is_empty());
    parts
}

/// The index of the bracket closing the one at `open`.
fn matching(tokens: &[String], open: usize) -> Result<usize> {
    let (opening, closing) = match tokens[open].as_str() {
        "(" => ("(", ")"),
        "{" => ("{", "}"),
        "[" => ("[", "]"),
        other => bail!("{other:?} is not an opening bracket"),
    };
    let mut depth = 0;
    for (index, token) in tokens.iter().enumerate().skip(open) {
        if token == opening {
            depth += 1;
        } else if token == closing {
            depth -= 1;
            if depth == 0 {
                return Ok(index);
            }
        }
    }
    bail!("unbalanced {opening}")
}

fn skip_past(tokens: &[String], from: usize, token: &str) -> usize {
    tokens[from..]
        .iter()
        .position(|t| t == token)
        .map_or(tokens.len(), |p| from + p + 1)
}

fn is_identifier(token: &str) -> bool {
    token
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && token.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Comments become spaces (a newline stays a newline); string literals are kept.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                out.push(c);
                while let Some(inner) = chars.next() {
                    out.push(inner);
                    if inner == '\\' {
                        if let Some(escaped) = chars.next() {
                            out.push(escaped);
                        }
                    } else if inner == '"' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut previous = ' ';
                for inner in chars.by_ref() {
                    if inner == '\n' {
                        out.push('\n');
                    }
                    if previous == '*' && inner == '/' {
                        break;
                    }
                    previous = inner;
                }
                out.push(' ');
            }
            '/' if chars.peek() == Some(&'/') => {
                for inner in chars.by_ref() {
                    if inner == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// Identifiers, numbers, string literals (as one token) and single punctuation characters.
fn tokenize(code: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut chars = code.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if c.is_whitespace() {
            continue;
        }
        let mut end = start + c.len_utf8();
        if c.is_ascii_alphanumeric() || c == '_' {
            while let Some(&(index, next)) = chars.peek() {
                if !(next.is_ascii_alphanumeric() || next == '_') {
                    break;
                }
                end = index + next.len_utf8();
                chars.next();
            }
        } else if c == '"' {
            let mut escaped = false;
            for (index, next) in chars.by_ref() {
                end = index + next.len_utf8();
                if escaped {
                    escaped = false;
                } else if next == '\\' {
                    escaped = true;
                } else if next == '"' {
                    break;
                }
            }
        }
        tokens.push(code[start..end].to_owned());
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    const WIDL_STYLE: &str = r#"
#ifndef __thing_h__
#define __thing_h__
#define THING_FLAG 0x0010
#define THING_BOTH (THING_FLAG | 0x1)
#define THING_E_GONE __MSABI_LONG(0x80200001)
typedef struct _THING_INFO {
    LPWSTR Name; /* the name */
    WINBOOL Done;
    BYTE Hash[20];
} THING_INFO;
typedef enum __WIDL_generated_name_1 {
    THING_STATE_IDLE = 0,
    THING_STATE_BUSY,
    THING_STATE_DONE = 0x5
} THING_STATE;
DEFINE_GUID(IID_IThing, 0x01b7bd23, 0xfb88, 0x4a77, 0x84,0x90, 0x58,0x91,0xd3,0xe4,0x65,0x3a);
#if defined(__cplusplus) && !defined(CINTERFACE)
MIDL_INTERFACE("01b7bd23-fb88-4a77-8490-5891d3e4653a")
IThing : public IUnknown { virtual HRESULT STDMETHODCALLTYPE Wrong(void) = 0; };
#else
typedef struct IThingVtbl {
    BEGIN_INTERFACE
    HRESULT (STDMETHODCALLTYPE *QueryInterface)(
        IThing *This,
        REFIID riid,
        void **ppvObject);
    ULONG (STDMETHODCALLTYPE *AddRef)(
        IThing *This);
    HRESULT (STDMETHODCALLTYPE *AddRanges)(
        IThing *This,
        const WCHAR *Url,
        BG_FILE_RANGE Ranges[]);
    END_INTERFACE
} IThingVtbl;
interface IThing {
    CONST_VTBL IThingVtbl* lpVtbl;
};
#endif
EXTERN_C const IID IID_IOther;
#endif
"#;

    fn read(text: &str) -> Declarations {
        let mut declarations = Declarations::default();
        declarations.read("thing.h", text).unwrap();
        declarations.evaluate_defines(&Declarations::define_origins("thing.h", text));
        declarations
    }

    #[test]
    fn reads_the_c_branch_of_a_widl_header() {
        let d = read(WIDL_STYLE);
        let (slots, origin) = &d.vtables["IThing"];
        assert_eq!(origin, "thing.h");
        let names: Vec<_> = slots.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["QueryInterface", "AddRef", "AddRanges"]);
        assert_eq!(slots[0].params, ["REFIID", "void * *"]);
        assert_eq!(slots[1].returns, "ULONG");
        assert!(slots[1].params.is_empty());
        assert_eq!(slots[2].params, ["const WCHAR *", "BG_FILE_RANGE *"]);
    }

    #[test]
    fn reads_constants_enums_structs_and_guids() {
        let d = read(WIDL_STYLE);
        let value = |name: &str| d.constants[name].0;
        assert_eq!(value("THING_FLAG"), 16);
        assert_eq!(value("THING_BOTH"), 17);
        assert_eq!(
            value("THING_E_GONE"),
            i128::from(0x8020_0001_u32.cast_signed())
        );
        assert_eq!(value("THING_STATE_BUSY"), 1);
        assert_eq!(value("THING_STATE_DONE"), 5);
        assert!(!d.constants.contains_key("__thing_h__"));
        let (fields, _) = &d.records["THING_INFO"];
        let fields: Vec<_> = fields
            .iter()
            .map(|f| (f.name.as_str(), f.ty.as_str()))
            .collect();
        assert_eq!(
            fields,
            [("Name", "LPWSTR"), ("Done", "BOOL"), ("Hash", "BYTE [20]")]
        );
        assert_eq!(
            d.guids["IID_IThing"].0.unwrap().to_string(),
            "01B7BD23-FB88-4A77-8490-5891D3E4653A"
        );
        assert_eq!(d.guids["IID_IOther"].0, None);
    }

    #[test]
    fn a_slot_whose_this_is_wrong_is_an_error() {
        let text = WIDL_STYLE.replace(
            "IThing *This,\n        REFIID",
            "IOther *This,\n        REFIID",
        );
        let mut declarations = Declarations::default();
        let error = format!("{:#}", declarations.read("thing.h", &text).unwrap_err());
        assert!(error.contains("QueryInterface"), "{error}");
    }

    #[test]
    fn follows_elif_and_else_branches() {
        let text = "#define TWO 2\n#if TWO == 3\n#define PICK 1\n#elif defined(TWO)\n#define PICK 2\n#else\n#define PICK 3\n#endif\n";
        let d = read(text);
        assert_eq!(d.constants["PICK"].0, 2);
    }
}
