//! What the C headers declare, read with `syn` from qmgr-ffi's `abi` modules: the
//! interfaces with their vtables, the GUID statics, and the names of every other item, so
//! that cbindgen can be told which header each belongs to.
//!
//! The format these modules follow is documented in `crates/qmgr-ffi/src/abi/bits.rs`:
//! `#[repr(C)] struct IFoo { lpVtbl: *const IFooVtbl }`, and `struct IFooVtbl { base:
//! ParentVtbl, Method: unsafe extern "C" fn(This: *mut IFoo, …) -> HRESULT, … }` (no `base`
//! for IUnknown itself); an enumeration is `pub type X = C_ENUM;` and the `pub const`s of
//! type `X` after it. Anything else in that shape is an error here, not a silent gap in
//! the headers.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use syn::{Expr, Fields, Item, Lit, Type};

/// The header a module's declarations go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    Bits,
    Qmgr,
}

/// The `abi` modules and the header each feeds, in the order their declarations are needed.
pub const ABI_MODULES: [(&str, Header); 3] = [
    ("types", Header::Bits),
    ("bits", Header::Bits),
    ("qmgr", Header::Qmgr),
];

/// A C type as a vtable method spells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CType {
    /// A typedef or primitive name (`HRESULT`, `void`, `uint16_t`).
    Named(String),
    /// `T *` (`const T *` when `pointee_const`).
    Pointer {
        pointee: Box<CType>,
        pointee_const: bool,
    },
}

impl CType {
    /// `TYPE name` as C declares it (`const WCHAR *ProxyList`, `IBackgroundCopyJob **ppJob`).
    pub fn declare(&self, name: &str) -> String {
        match self {
            CType::Named(type_name) if name.is_empty() => type_name.clone(),
            CType::Named(type_name) => format!("{type_name} {name}"),
            CType::Pointer {
                pointee,
                pointee_const,
            } => match pointee.as_ref() {
                CType::Named(type_name) => {
                    let qualifier = if *pointee_const { "const " } else { "" };
                    format!("{qualifier}{type_name} *{name}")
                }
                CType::Pointer { .. } => {
                    let qualifier = if *pointee_const { "const " } else { "" };
                    pointee.declare(&format!("{qualifier}*{name}"))
                }
            },
        }
    }
}

impl fmt::Display for CType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.declare("").trim_end())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub ty: CType,
}

/// One vtable slot after `This`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Method {
    pub name: String,
    pub returns: CType,
    pub params: Vec<Param>,
}

#[derive(Debug, Clone)]
pub struct Interface {
    pub name: String,
    /// The parent interface; `None` only for IUnknown.
    pub parent: Option<String>,
    /// The interface's own methods, in slot order (inherited ones are the parent's).
    pub methods: Vec<Method>,
    /// The Rust doc comment of the interface struct, one entry per line.
    pub doc: Vec<String>,
    pub header: Header,
}

/// A `#[unsafe(no_mangle)] pub static NAME: IID = GUID::new(…)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuidStatic {
    pub name: String,
    pub value: GuidValue,
    pub header: Header,
}

/// A GUID's four fields, as `DEFINE_GUID` and `GUID::new` spell them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GuidValue {
    pub data1: u32,
    pub data2: u16,
    pub data3: u16,
    pub data4: [u8; 8],
}

impl fmt::Display for GuidValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.data4;
        write!(
            f,
            "{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}",
            self.data1, self.data2, self.data3, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
        )
    }
}

/// Items cbindgen emits (typedefs, structs, unions, constants, statics), by header.
#[derive(Debug, Clone)]
pub struct FlatItem {
    pub name: String,
    pub kind: FlatKind,
    pub header: Header,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlatKind {
    /// `pub type`, `pub struct` or `pub union`: cbindgen must be told to emit it even when
    /// no function reaches it.
    Type,
    /// `pub const` and `pub static`: cbindgen emits them on its own.
    Value,
}

/// The Rust type a `pub type X = C_ENUM;` names to make `X` a C `enum` in the headers.
pub const ENUM_MARKER: &str = "C_ENUM";

/// A C enumeration: `pub type NAME = C_ENUM;` in an abi module, its enumerators the
/// `pub const`s of type `NAME` declared after it, in their order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CEnum {
    pub name: String,
    pub enumerators: Vec<(String, u64)>,
    /// The Rust doc comment of the type alias, one entry per line.
    pub doc: Vec<String>,
    pub header: Header,
}

/// A field of a `#[repr(C)]` struct or union that is not an interface or vtable.
#[derive(Debug, Clone)]
pub struct Record {
    pub name: String,
    pub fields: Vec<(String, String)>,
    pub is_union: bool,
}

#[derive(Debug, Clone)]
pub struct AbiModel {
    pub interfaces: Vec<Interface>,
    pub guids: Vec<GuidStatic>,
    pub flat: Vec<FlatItem>,
    pub records: Vec<Record>,
    pub enums: Vec<CEnum>,
    /// The source files read, for messages.
    pub sources: Vec<PathBuf>,
}

impl AbiModel {
    /// Reads `crates/qmgr-ffi/src/abi/*.rs` under `ffi_src`.
    pub fn load(ffi_src: &Path) -> Result<AbiModel> {
        let abi_dir = ffi_src.join("abi");
        check_module_list(&abi_dir.join("mod.rs"))?;
        let mut model = AbiModel {
            interfaces: Vec::new(),
            guids: Vec::new(),
            flat: Vec::new(),
            records: Vec::new(),
            enums: Vec::new(),
            sources: Vec::new(),
        };
        for (module, header) in ABI_MODULES {
            let path = abi_dir.join(format!("{module}.rs"));
            let text = fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let file = syn::parse_file(&text)
                .with_context(|| format!("cannot parse {}", path.display()))?;
            read_module(&file.items, header, &mut model)
                .with_context(|| format!("in {}", path.display()))?;
            model.sources.push(path);
        }
        model.check_consistency()?;
        Ok(model)
    }

    pub fn interface(&self, name: &str) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.name == name)
    }

    /// The interface chain from IUnknown down to `interface`, inclusive.
    pub fn lineage<'a>(&'a self, interface: &'a Interface) -> Vec<&'a Interface> {
        let mut chain = vec![interface];
        let mut current = interface;
        while let Some(parent) = current.parent.as_deref().and_then(|p| self.interface(p)) {
            chain.push(parent);
            current = parent;
        }
        chain.reverse();
        chain
    }

    /// Every slot of `interface`, inherited ones first, each with the interface that
    /// declares it.
    pub fn slots<'a>(&'a self, interface: &'a Interface) -> Vec<(&'a Interface, &'a Method)> {
        self.lineage(interface)
            .into_iter()
            .flat_map(|owner| owner.methods.iter().map(move |method| (owner, method)))
            .collect()
    }

    /// The interfaces of `header`, each after its parent.
    pub fn interfaces_of(&self, header: Header) -> Vec<&Interface> {
        let mut ordered: Vec<&Interface> = Vec::new();
        for interface in &self.interfaces {
            for ancestor in self.lineage(interface) {
                if ancestor.header == header && !ordered.iter().any(|i| i.name == ancestor.name) {
                    ordered.push(ancestor);
                }
            }
        }
        ordered
    }

    /// The C enums of `header`, in declaration order.
    pub fn enums_of(&self, header: Header) -> impl Iterator<Item = &CEnum> {
        self.enums.iter().filter(move |e| e.header == header)
    }

    /// Names the C enums take out of cbindgen's hands: the marker, each enum type and
    /// each enumerator.
    pub fn enum_names(&self) -> Vec<String> {
        let mut names = vec![ENUM_MARKER.to_owned()];
        for c_enum in &self.enums {
            names.push(c_enum.name.clone());
            names.extend(c_enum.enumerators.iter().map(|(name, _)| name.clone()));
        }
        names
    }

    pub fn guid(&self, name: &str) -> Option<&GuidStatic> {
        self.guids.iter().find(|g| g.name == name)
    }

    fn check_consistency(&self) -> Result<()> {
        for interface in &self.interfaces {
            if let Some(parent) = &interface.parent {
                ensure!(
                    self.interface(parent).is_some(),
                    "{} derives from {parent}, which is not declared",
                    interface.name
                );
            }
            ensure!(
                self.guid(&format!("IID_{}", interface.name)).is_some(),
                "interface {} has no IID_{} static",
                interface.name,
                interface.name
            );
        }
        for c_enum in &self.enums {
            ensure!(
                !c_enum.enumerators.is_empty(),
                "{} is a C enum without enumerators (declare `pub const X: {} = …;` after it)",
                c_enum.name,
                c_enum.name
            );
        }
        let roots: Vec<_> = self
            .interfaces
            .iter()
            .filter(|i| i.parent.is_none())
            .map(|i| i.name.as_str())
            .collect();
        ensure!(
            roots == ["IUnknown"],
            "exactly one root interface, IUnknown, is expected (found {roots:?})"
        );
        Ok(())
    }
}

/// A new `abi` module must be given a header here before its declarations can be emitted.
fn check_module_list(mod_rs: &Path) -> Result<()> {
    let text =
        fs::read_to_string(mod_rs).with_context(|| format!("cannot read {}", mod_rs.display()))?;
    let file =
        syn::parse_file(&text).with_context(|| format!("cannot parse {}", mod_rs.display()))?;
    let mut declared: Vec<String> = file
        .items
        .iter()
        .filter_map(|item| match item {
            Item::Mod(module) => Some(module.ident.to_string()),
            _ => None,
        })
        .collect();
    declared.sort();
    let mut known: Vec<String> = ABI_MODULES.iter().map(|(m, _)| (*m).to_owned()).collect();
    known.sort();
    ensure!(
        declared == known,
        "{} declares the modules {declared:?}; the header generator knows {known:?} \
         (give a new module its header in xtask/src/headers/model.rs)",
        mod_rs.display()
    );
    Ok(())
}

fn read_module(items: &[Item], header: Header, model: &mut AbiModel) -> Result<()> {
    // Vtables are read after every interface struct is known.
    let mut vtables = Vec::new();
    for item in items {
        match item {
            Item::Struct(item) if !is_public(&item.vis) => {}
            Item::Struct(item) => {
                let name = item.ident.to_string();
                if let Some(vtable) = interface_vtable_name(item)? {
                    ensure!(
                        vtable == format!("{name}Vtbl"),
                        "interface {name} points at {vtable}, expected {name}Vtbl"
                    );
                    model.interfaces.push(Interface {
                        name,
                        parent: None,
                        methods: Vec::new(),
                        doc: doc_lines(&item.attrs),
                        header,
                    });
                } else if name.ends_with("Vtbl") {
                    vtables.push(item);
                } else {
                    model.records.push(record(&name, &item.fields, false)?);
                    model.flat.push(flat(name, FlatKind::Type, header));
                }
            }
            Item::Union(item) if is_public(&item.vis) => {
                let name = item.ident.to_string();
                let fields = Fields::Named(item.fields.clone());
                model.records.push(record(&name, &fields, true)?);
                model.flat.push(flat(name, FlatKind::Type, header));
            }
            Item::Type(item) if is_public(&item.vis) => {
                let name = item.ident.to_string();
                if name == ENUM_MARKER {
                    continue;
                }
                if path_name(&item.ty).as_deref() == Some(ENUM_MARKER) {
                    model.enums.push(CEnum {
                        name,
                        enumerators: Vec::new(),
                        doc: doc_lines(&item.attrs),
                        header,
                    });
                } else {
                    model.flat.push(flat(name, FlatKind::Type, header));
                }
            }
            Item::Const(item) if is_public(&item.vis) => {
                let name = item.ident.to_string();
                let type_name = path_name(&item.ty);
                if let Some(c_enum) = model
                    .enums
                    .iter_mut()
                    .find(|e| Some(&e.name) == type_name.as_ref())
                {
                    let value = int_literal(&item.expr).with_context(|| {
                        format!("{name}: an enumerator of {} must be a literal", c_enum.name)
                    })?;
                    c_enum.enumerators.push((name, value));
                } else {
                    model.flat.push(flat(name, FlatKind::Value, header));
                }
            }
            Item::Static(item) if is_public(&item.vis) => {
                let name = item.ident.to_string();
                let value = guid_value(&item.expr)
                    .with_context(|| format!("static {name} is not a GUID::new(…)"))?;
                model.guids.push(GuidStatic {
                    name: name.clone(),
                    value,
                    header,
                });
                model.flat.push(flat(name, FlatKind::Value, header));
            }
            _ => {}
        }
    }
    for vtable in vtables {
        read_vtable(vtable, model)?;
    }
    Ok(())
}

fn flat(name: String, kind: FlatKind, header: Header) -> FlatItem {
    FlatItem { name, kind, header }
}

fn is_public(vis: &syn::Visibility) -> bool {
    matches!(vis, syn::Visibility::Public(_))
}

fn record(name: &str, fields: &Fields, is_union: bool) -> Result<Record> {
    let Fields::Named(named) = fields else {
        bail!("{name} must have named fields");
    };
    let fields = named
        .named
        .iter()
        .map(|field| {
            let field_name = field.ident.as_ref().map(ToString::to_string);
            let field_name = field_name.with_context(|| format!("{name}: unnamed field"))?;
            Ok((field_name, type_text(&field.ty)))
        })
        .collect::<Result<_>>()?;
    Ok(Record {
        name: name.to_owned(),
        fields,
        is_union,
    })
}

/// Rust spelling of a field type, for messages and the compatibility report.
fn type_text(ty: &Type) -> String {
    match ty {
        Type::Path(path) => path
            .path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default(),
        Type::Ptr(pointer) => {
            let mutability = if pointer.mutability.is_some() {
                "mut"
            } else {
                "const"
            };
            format!("*{mutability} {}", type_text(&pointer.elem))
        }
        Type::Array(array) => format!("[{}; _]", type_text(&array.elem)),
        _ => "?".to_owned(),
    }
}

/// `Some(vtable)` when the struct is an interface: its only field is `lpVtbl: *const XVtbl`.
fn interface_vtable_name(item: &syn::ItemStruct) -> Result<Option<String>> {
    let Fields::Named(fields) = &item.fields else {
        return Ok(None);
    };
    let mut fields = fields.named.iter();
    let (Some(first), None) = (fields.next(), fields.next()) else {
        return Ok(None);
    };
    if first.ident.as_ref().is_none_or(|ident| ident != "lpVtbl") {
        return Ok(None);
    }
    let Type::Ptr(pointer) = &first.ty else {
        bail!("{}: lpVtbl must be a pointer", item.ident);
    };
    ensure!(
        pointer.const_token.is_some(),
        "{}: lpVtbl must be *const",
        item.ident
    );
    Ok(Some(path_name(&pointer.elem).with_context(|| {
        format!("{}: lpVtbl must point at a named vtable", item.ident)
    })?))
}

fn read_vtable(item: &syn::ItemStruct, model: &mut AbiModel) -> Result<()> {
    let vtable = item.ident.to_string();
    let interface_name = vtable.trim_end_matches("Vtbl").to_owned();
    let Fields::Named(fields) = &item.fields else {
        bail!("{vtable} must have named fields");
    };
    let mut parent = None;
    let mut methods = Vec::new();
    for (index, field) in fields.named.iter().enumerate() {
        let field_name = field
            .ident
            .as_ref()
            .map(ToString::to_string)
            .with_context(|| format!("{vtable}: unnamed field"))?;
        if field_name == "base" {
            ensure!(
                index == 0,
                "{vtable}: `base` must be the first field (it holds the inherited slots)"
            );
            let base = path_name(&field.ty).with_context(|| format!("{vtable}: base type"))?;
            let parent_name = base
                .strip_suffix("Vtbl")
                .with_context(|| format!("{vtable}: base {base} is not a vtable"))?;
            parent = Some(parent_name.to_owned());
            continue;
        }
        let method = read_method(&field_name, &field.ty, &interface_name)
            .with_context(|| format!("{vtable}::{field_name}"))?;
        methods.push(method);
    }
    let interface = model
        .interfaces
        .iter_mut()
        .find(|i| i.name == interface_name)
        .with_context(|| format!("{vtable} has no interface struct {interface_name}"))?;
    ensure!(
        parent.is_some() || interface_name == "IUnknown",
        "{vtable} lacks `base: ParentVtbl` (only IUnknown has no parent)"
    );
    interface.parent = parent;
    interface.methods = methods;
    Ok(())
}

fn read_method(name: &str, ty: &Type, interface: &str) -> Result<Method> {
    let Type::BareFn(function) = ty else {
        bail!("a vtable slot must be a function pointer");
    };
    let abi = function
        .abi
        .as_ref()
        .and_then(|abi| abi.name.as_ref())
        .map(syn::LitStr::value);
    ensure!(
        abi.as_deref() == Some("C"),
        "a vtable slot must be `unsafe extern \"C\" fn` (found {abi:?})"
    );
    ensure!(function.unsafety.is_some(), "a vtable slot must be unsafe");
    let mut inputs = function.inputs.iter();
    let this = inputs
        .next()
        .context("the first parameter must be `This`")?;
    let this_name = this.name.as_ref().map(|(ident, _)| ident.to_string());
    ensure!(
        this_name.as_deref() == Some("This"),
        "the first parameter must be named `This`"
    );
    let this_type = c_type(&this.ty)?;
    let expected_this = CType::Pointer {
        pointee: Box::new(CType::Named(interface.to_owned())),
        pointee_const: false,
    };
    ensure!(
        this_type == expected_this,
        "`This` must be `*mut {interface}` (found {this_type})"
    );
    let params = inputs
        .map(|input| {
            let param_name = input
                .name
                .as_ref()
                .map(|(ident, _)| ident.to_string())
                .context("every parameter needs a name (the C macros use it)")?;
            Ok(Param {
                name: param_name,
                ty: c_type(&input.ty)?,
            })
        })
        .collect::<Result<_>>()?;
    let returns = match &function.output {
        syn::ReturnType::Type(_, ty) => c_type(ty)?,
        syn::ReturnType::Default => CType::Named("void".to_owned()),
    };
    Ok(Method {
        name: name.to_owned(),
        returns,
        params,
    })
}

/// The C spelling of a Rust parameter type: type aliases keep their (Windows) names,
/// primitives become `<stdint.h>` types.
fn c_type(ty: &Type) -> Result<CType> {
    match ty {
        Type::Ptr(pointer) => Ok(CType::Pointer {
            pointee: Box::new(c_type(&pointer.elem)?),
            pointee_const: pointer.const_token.is_some(),
        }),
        Type::Path(_) => {
            let name = path_name(ty).context("unnamed type")?;
            Ok(CType::Named(
                primitive_c_name(&name).unwrap_or(&name).to_owned(),
            ))
        }
        other => bail!("unsupported parameter type {other:?}"),
    }
}

fn primitive_c_name(rust: &str) -> Option<&'static str> {
    Some(match rust {
        "c_void" => "void",
        "u8" => "uint8_t",
        "u16" => "uint16_t",
        "u32" => "uint32_t",
        "u64" => "uint64_t",
        "i8" => "int8_t",
        "i16" => "int16_t",
        "i32" => "int32_t",
        "i64" => "int64_t",
        "usize" => "size_t",
        "isize" => "ptrdiff_t",
        "f32" => "float",
        "f64" => "double",
        _ => return None,
    })
}

fn path_name(ty: &Type) -> Option<String> {
    match ty {
        Type::Path(path) if path.qself.is_none() => {
            path.path.segments.last().map(|s| s.ident.to_string())
        }
        _ => None,
    }
}

fn doc_lines(attrs: &[syn::Attribute]) -> Vec<String> {
    attrs
        .iter()
        .filter(|attr| attr.path().is_ident("doc"))
        .filter_map(|attr| match &attr.meta {
            syn::Meta::NameValue(pair) => match &pair.value {
                Expr::Lit(syn::ExprLit {
                    lit: Lit::Str(text),
                    ..
                }) => Some(text.value().trim().to_owned()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// The value of `GUID::new(0x…, 0x…, 0x…, [0x…; 8])`.
fn guid_value(expr: &Expr) -> Result<GuidValue> {
    let Expr::Call(call) = expr else {
        bail!("expected a call");
    };
    let args: Vec<&Expr> = call.args.iter().collect();
    let [data1, data2, data3, Expr::Array(data4)] = args.as_slice() else {
        bail!("expected four arguments, the last an array");
    };
    let bytes: Vec<u8> = data4
        .elems
        .iter()
        .map(|e| int_literal(e).and_then(|v| u8::try_from(v).context("byte out of range")))
        .collect::<Result<_>>()?;
    Ok(GuidValue {
        data1: u32::try_from(int_literal(data1)?).context("Data1 out of range")?,
        data2: u16::try_from(int_literal(data2)?).context("Data2 out of range")?,
        data3: u16::try_from(int_literal(data3)?).context("Data3 out of range")?,
        data4: bytes
            .try_into()
            .map_err(|b: Vec<u8>| anyhow::anyhow!("Data4 has {} bytes, not 8", b.len()))?,
    })
}

fn int_literal(expr: &Expr) -> Result<u64> {
    match expr {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(int), ..
        }) => int.base10_parse::<u64>().context("integer literal"),
        _ => bail!("expected an integer literal"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_of(source: &str) -> Result<AbiModel> {
        let file = syn::parse_file(source)?;
        let mut model = AbiModel {
            interfaces: Vec::new(),
            guids: Vec::new(),
            flat: Vec::new(),
            records: Vec::new(),
            enums: Vec::new(),
            sources: Vec::new(),
        };
        read_module(&file.items, Header::Bits, &mut model)?;
        model.check_consistency()?;
        Ok(model)
    }

    const TWO_INTERFACES: &str = r#"
        #[unsafe(no_mangle)]
        pub static IID_IUnknown: IID = GUID::new(0, 0, 0, [0xC0, 0, 0, 0, 0, 0, 0, 0x46]);
        #[unsafe(no_mangle)]
        pub static IID_IThing: IID = GUID::new(0x12345678, 0x9ABC, 0xDEF0, [1, 2, 3, 4, 5, 6, 7, 8]);
        /// The root.
        #[repr(C)] pub struct IUnknown { pub lpVtbl: *const IUnknownVtbl }
        #[repr(C)] pub struct IUnknownVtbl {
            pub QueryInterface: unsafe extern "C" fn(This: *mut IUnknown, riid: REFIID, ppvObject: *mut *mut c_void) -> HRESULT,
            pub AddRef: unsafe extern "C" fn(This: *mut IUnknown) -> ULONG,
            pub Release: unsafe extern "C" fn(This: *mut IUnknown) -> ULONG,
        }
        /// A thing.
        #[repr(C)] pub struct IThing { pub lpVtbl: *const IThingVtbl }
        #[repr(C)] pub struct IThingVtbl {
            pub base: IUnknownVtbl,
            pub SetName: unsafe extern "C" fn(This: *mut IThing, Name: *const WCHAR, Bytes: *mut *mut u8) -> HRESULT,
        }
        pub type LONG = i32;
        pub const ANSWER: LONG = 42;
        #[repr(C)] pub struct PAIR { pub First: LONG, pub Second: *mut WCHAR }
    "#;

    #[test]
    fn reads_interfaces_with_their_parents_and_slots() {
        let model = model_of(TWO_INTERFACES).unwrap();
        let thing = model.interface("IThing").unwrap();
        assert_eq!(thing.parent.as_deref(), Some("IUnknown"));
        assert_eq!(thing.doc, ["A thing."]);
        let slots: Vec<_> = model
            .slots(thing)
            .into_iter()
            .map(|(owner, m)| format!("{}::{}", owner.name, m.name))
            .collect();
        assert_eq!(
            slots,
            [
                "IUnknown::QueryInterface",
                "IUnknown::AddRef",
                "IUnknown::Release",
                "IThing::SetName"
            ]
        );
        let set_name = &thing.methods[0];
        assert_eq!(set_name.params[0].ty.declare("Name"), "const WCHAR *Name");
        assert_eq!(set_name.params[1].ty.declare("Bytes"), "uint8_t **Bytes");
        assert_eq!(
            model.guid("IID_IThing").unwrap().value.to_string(),
            "12345678-9ABC-DEF0-0102-030405060708"
        );
        let flat: Vec<_> = model.flat.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            flat,
            ["IID_IUnknown", "IID_IThing", "LONG", "ANSWER", "PAIR"]
        );
        assert_eq!(
            model.records[0].fields[1],
            ("Second".into(), "*mut WCHAR".into())
        );
    }

    #[test]
    fn constants_of_a_c_enum_type_become_its_enumerators() {
        let source = format!(
            "{TWO_INTERFACES}
            pub type C_ENUM = u32;
            /// A state.
            pub type STATE = C_ENUM;
            pub const STATE_IDLE: STATE = 0;
            pub const STATE_BUSY: STATE = 0x1_0;
            pub const PLAIN: ULONG = 3;"
        );
        let model = model_of(&source).unwrap();
        assert_eq!(
            model.enums,
            [CEnum {
                name: "STATE".into(),
                enumerators: vec![("STATE_IDLE".into(), 0), ("STATE_BUSY".into(), 16)],
                doc: vec!["A state.".into()],
                header: Header::Bits,
            }]
        );
        let flat: Vec<_> = model.flat.iter().map(|f| f.name.as_str()).collect();
        assert!(flat.contains(&"PLAIN"), "{flat:?}");
        for taken in ["C_ENUM", "STATE", "STATE_IDLE"] {
            assert!(!flat.contains(&taken), "{taken} left to cbindgen: {flat:?}");
            assert!(model.enum_names().iter().any(|n| n == taken), "{taken}");
        }
    }

    #[test]
    fn rejects_a_c_enum_without_enumerators() {
        let source = format!("{TWO_INTERFACES} pub type C_ENUM = u32; pub type EMPTY = C_ENUM;");
        let error = format!("{:#}", model_of(&source).unwrap_err());
        assert!(
            error.contains("EMPTY is a C enum without enumerators"),
            "{error}"
        );
    }

    #[test]
    fn rejects_a_slot_whose_this_is_another_interface() {
        let source = TWO_INTERFACES.replace("This: *mut IThing", "This: *mut IUnknown");
        let error = format!("{:#}", model_of(&source).unwrap_err());
        assert!(error.contains("`This` must be `*mut IThing`"), "{error}");
    }

    #[test]
    fn rejects_an_interface_without_an_iid() {
        let source = TWO_INTERFACES.replace("pub static IID_IThing", "pub static IID_Other");
        let error = format!("{:#}", model_of(&source).unwrap_err());
        assert!(error.contains("IThing has no IID_IThing"), "{error}");
    }

    #[test]
    fn rejects_a_system_abi_slot() {
        let source = TWO_INTERFACES.replace(
            "pub SetName: unsafe extern \"C\"",
            "pub SetName: unsafe extern \"system\"",
        );
        assert!(model_of(&source).is_err());
    }

    #[test]
    fn declares_pointer_to_const_pointer() {
        let ty = CType::Pointer {
            pointee: Box::new(CType::Pointer {
                pointee: Box::new(CType::Named("T".into())),
                pointee_const: false,
            }),
            pointee_const: true,
        };
        assert_eq!(ty.declare("p"), "T *const *p");
        assert_eq!(ty.to_string(), "T *const *");
    }
}
