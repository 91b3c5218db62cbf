//! The COM part of the headers, in the shape mingw-w64's WIDL output has: forward
//! declarations, then per interface a C++ abstract class (`__cplusplus` without
//! `CINTERFACE`) or, for C, a vtable struct with every inherited slot repeated flat, the
//! interface struct holding `lpVtbl`, and the `COBJMACROS` call macros; finally the
//! `__uuidof` associations for C++.

use std::fmt::Write as _;

use super::model::{AbiModel, Header, Interface, Method};

const INDENT: &str = "    ";

/// `typedef struct IFoo IFoo;` for every interface of `header`.
pub fn forward_declarations(model: &AbiModel, header: Header) -> String {
    let mut out = String::from(
        "/* The interfaces, declared ahead: their methods take each other as parameters. */\n",
    );
    for interface in model.interfaces_of(header) {
        let name = &interface.name;
        writeln!(out, "typedef struct {name} {name};").unwrap();
    }
    out
}

/// Every interface of `header`, each after its parent.
pub fn interfaces(model: &AbiModel, header: Header) -> String {
    model
        .interfaces_of(header)
        .into_iter()
        .map(|interface| interface_section(model, interface))
        .collect::<Vec<_>>()
        .join("\n")
}

fn interface_section(model: &AbiModel, interface: &Interface) -> String {
    let name = &interface.name;
    let mut out = String::new();
    writeln!(out, "/{}", "*".repeat(77)).unwrap();
    writeln!(out, " * {name}").unwrap();
    for line in &interface.doc {
        let line = plain_doc(line);
        if line.is_empty() {
            out.push_str(" *\n");
        } else {
            writeln!(out, " * {line}").unwrap();
        }
    }
    out.push_str(" */\n");
    out.push_str("#if defined(__cplusplus) && !defined(CINTERFACE)\n");
    out.push_str(&cxx_class(interface));
    out.push_str("#else\n");
    out.push_str(&c_vtable(model, interface));
    out.push('\n');
    writeln!(out, "struct {name} {{").unwrap();
    writeln!(out, "{INDENT}CONST_VTBL {name}Vtbl *lpVtbl;").unwrap();
    out.push_str("};\n\n");
    out.push_str(&call_macros(model, interface));
    out.push_str("#endif\n");
    out
}

/// Rust doc text as plain C comment text: no intra-doc link brackets or backticks.
fn plain_doc(line: &str) -> String {
    line.replace("[`", "").replace("`]", "").replace('`', "")
}

fn cxx_class(interface: &Interface) -> String {
    let name = &interface.name;
    let mut out = match &interface.parent {
        Some(parent) => format!("struct {name} : public {parent}\n{{\n"),
        None => format!("struct {name}\n{{\n"),
    };
    let methods: Vec<String> = interface
        .methods
        .iter()
        .map(|method| {
            let head = format!(
                "{INDENT}virtual {} STDMETHODCALLTYPE {}(",
                method.returns, method.name
            );
            if method.params.is_empty() {
                format!("{head}) = 0;\n")
            } else {
                let params: Vec<String> = method
                    .params
                    .iter()
                    .map(|p| format!("{INDENT}{INDENT}{}", p.ty.declare(&p.name)))
                    .collect();
                format!("{head}\n{}) = 0;\n", params.join(",\n"))
            }
        })
        .collect();
    out.push_str(&methods.join("\n"));
    out.push_str("};\n");
    out
}

fn c_vtable(model: &AbiModel, interface: &Interface) -> String {
    let name = &interface.name;
    let mut out = format!("typedef struct {name}Vtbl {{\n{INDENT}BEGIN_INTERFACE\n");
    let mut group = "";
    for (owner, method) in model.slots(interface) {
        if owner.name == group {
            out.push('\n');
        } else {
            group = &owner.name;
            writeln!(out, "\n{INDENT}/*** {group} methods ***/").unwrap();
        }
        out.push_str(&c_slot(name, method));
    }
    writeln!(out, "\n{INDENT}END_INTERFACE\n}} {name}Vtbl;").unwrap();
    out
}

fn c_slot(interface: &str, method: &Method) -> String {
    let mut params = vec![format!("{interface} *This")];
    params.extend(method.params.iter().map(|p| p.ty.declare(&p.name)));
    let params: Vec<String> = params
        .into_iter()
        .map(|p| format!("{INDENT}{INDENT}{p}"))
        .collect();
    format!(
        "{INDENT}{} (STDMETHODCALLTYPE *{})(\n{});\n",
        method.returns,
        method.name,
        params.join(",\n")
    )
}

fn call_macros(model: &AbiModel, interface: &Interface) -> String {
    let name = &interface.name;
    let mut out = String::from("#ifdef COBJMACROS\n");
    let mut group = "";
    for (owner, method) in model.slots(interface) {
        if owner.name != group {
            group = &owner.name;
            writeln!(out, "/*** {group} methods ***/").unwrap();
        }
        let mut args = vec!["This"];
        args.extend(method.params.iter().map(|p| p.name.as_str()));
        let args = args.join(",");
        writeln!(
            out,
            "#define {name}_{method}({args}) ((This)->lpVtbl->{method}({args}))",
            method = method.name
        )
        .unwrap();
    }
    out.push_str("#endif\n");
    out
}

/// The C++ `__uuidof` associations of `header`: each interface with its `IID_`, each
/// coclass (declared here, as the SDK does) with its `CLSID_`.
pub fn uuid_associations(model: &AbiModel, header: Header) -> String {
    let mut out = String::from(
        "/* __uuidof(X) for the interfaces and classes above (C++ only). */\n\
         #ifdef __cplusplus\nextern \"C++\" {\n",
    );
    for interface in model.interfaces_of(header) {
        out.push_str(&uuid_association(
            &interface.name,
            &format!("IID_{}", interface.name),
        ));
    }
    for guid in model.guids.iter().filter(|g| g.header == header) {
        if let Some(class) = guid.name.strip_prefix("CLSID_") {
            writeln!(out, "class {class};").unwrap();
            out.push_str(&uuid_association(class, &guid.name));
        }
    }
    out.push_str("}\n#endif\n");
    out
}

fn uuid_association(type_name: &str, guid: &str) -> String {
    format!(
        "template <> struct qmgr_uuidof_traits<{type_name}> {{\n\
         {INDENT}static const GUID &value() {{ return {guid}; }}\n}};\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::model::{CType, GuidStatic, GuidValue, Param};

    fn pointer(to: &str) -> CType {
        CType::Pointer {
            pointee: Box::new(CType::Named(to.to_owned())),
            pointee_const: false,
        }
    }

    fn method(name: &str, returns: &str, params: &[(&str, CType)]) -> Method {
        Method {
            name: name.to_owned(),
            returns: CType::Named(returns.to_owned()),
            params: params
                .iter()
                .map(|(n, t)| Param {
                    name: (*n).to_owned(),
                    ty: t.clone(),
                })
                .collect(),
        }
    }

    fn sample() -> AbiModel {
        let unknown = Interface {
            name: "IUnknown".into(),
            parent: None,
            methods: vec![
                method(
                    "QueryInterface",
                    "HRESULT",
                    &[
                        ("riid", CType::Named("REFIID".into())),
                        (
                            "ppvObject",
                            CType::Pointer {
                                pointee: Box::new(pointer("void")),
                                pointee_const: false,
                            },
                        ),
                    ],
                ),
                method("AddRef", "ULONG", &[]),
                method("Release", "ULONG", &[]),
            ],
            doc: vec![],
            header: Header::Bits,
        };
        let thing = Interface {
            name: "IThing".into(),
            parent: Some("IUnknown".into()),
            methods: vec![
                method("Stop", "HRESULT", &[]),
                method("GetName", "HRESULT", &[("pName", pointer("LPWSTR"))]),
            ],
            doc: vec!["A [`IThing`] for `tests`.".into()],
            header: Header::Bits,
        };
        let guid = |name: &str| GuidStatic {
            name: name.into(),
            value: GuidValue {
                data1: 1,
                data2: 2,
                data3: 3,
                data4: [0; 8],
            },
            header: Header::Bits,
        };
        AbiModel {
            interfaces: vec![unknown, thing],
            guids: vec![
                guid("IID_IUnknown"),
                guid("IID_IThing"),
                guid("CLSID_Thing"),
            ],
            flat: vec![],
            records: vec![],
            enums: vec![],
            sources: vec![],
        }
    }

    #[test]
    fn the_c_vtable_repeats_inherited_slots_flat_with_the_derived_this() {
        let model = sample();
        let section = interface_section(&model, model.interface("IThing").unwrap());
        let vtable = section.split("typedef struct IThingVtbl {").nth(1).unwrap();
        let slots: Vec<&str> = vtable
            .lines()
            .filter(|l| l.contains("(STDMETHODCALLTYPE *"))
            .collect();
        assert_eq!(slots.len(), 5, "{section}");
        assert!(slots[0].contains("HRESULT (STDMETHODCALLTYPE *QueryInterface)("));
        assert!(slots[4].contains("*GetName)("));
        assert!(
            vtable.contains(
                "        IThing *This,\n        REFIID riid,\n        void **ppvObject);"
            )
        );
        assert!(!vtable.contains("IUnknown *This"));
        assert!(section.contains("struct IThing {\n    CONST_VTBL IThingVtbl *lpVtbl;\n};"));
        assert!(section.contains(" * A IThing for tests.\n"));
    }

    #[test]
    fn macros_cover_every_slot_including_inherited_ones() {
        let model = sample();
        let section = interface_section(&model, model.interface("IThing").unwrap());
        for expected in [
            "#define IThing_QueryInterface(This,riid,ppvObject) ((This)->lpVtbl->QueryInterface(This,riid,ppvObject))",
            "#define IThing_AddRef(This) ((This)->lpVtbl->AddRef(This))",
            "#define IThing_Stop(This) ((This)->lpVtbl->Stop(This))",
            "#define IThing_GetName(This,pName) ((This)->lpVtbl->GetName(This,pName))",
        ] {
            assert!(
                section.contains(expected),
                "missing {expected} in\n{section}"
            );
        }
    }

    #[test]
    fn the_cxx_class_declares_only_its_own_methods_pure_virtual() {
        let model = sample();
        let section = interface_section(&model, model.interface("IThing").unwrap());
        let class = section.split("#else").next().unwrap();
        assert!(class.contains("struct IThing : public IUnknown\n{"));
        assert!(class.contains("    virtual HRESULT STDMETHODCALLTYPE Stop() = 0;"));
        assert!(class.contains(
            "    virtual HRESULT STDMETHODCALLTYPE GetName(\n        LPWSTR *pName) = 0;"
        ));
        assert!(!class.contains("QueryInterface"));
        assert!(!class.contains("virtual ~"));
    }

    #[test]
    fn uuidof_knows_interfaces_and_classes() {
        let model = sample();
        let text = uuid_associations(&model, Header::Bits);
        assert!(text.contains(
            "qmgr_uuidof_traits<IThing> {\n    static const GUID &value() { return IID_IThing; }"
        ));
        assert!(text.contains("class Thing;\ntemplate <> struct qmgr_uuidof_traits<Thing>"));
        assert!(text.contains("return CLSID_Thing;"));
    }
}
