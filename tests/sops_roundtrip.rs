//! Property: random documents in every format → encrypt → decrypt give the input back (its
//! canonical rendering), with and without Shamir key groups; a sample also through real sops.

mod sops_support;

use proptest::prelude::*;
use tskeyctl::sops::encrypt::{self, Spec};
use tskeyctl::sops::tree::{Item, Node};
use tskeyctl::sops::{self, DecryptOptions, Format, Identities, Sources};
use tskeyctl::source::Origin;

fn key() -> impl Strategy<Value = String> {
    "[a-zA-Z_][a-zA-Z0-9_]{0,7}".prop_filter("not sops", |k| !k.starts_with("sops"))
}

fn yaml_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 ]{0,12}",
        "\\PC{0,12}",
        Just(String::new()),
        Just(" lead".to_string()),
        Just("trail ".to_string()),
        Just("a: b".to_string()),
        Just("#x".to_string()),
        Just("- x".to_string()),
        Just("yes".to_string()),
        Just("010".to_string()),
        Just("1e3".to_string()),
        Just("null".to_string()),
        Just("2024-01-01".to_string()),
        Just("multi\nline\n".to_string()),
        Just("tab\there".to_string()),
        Just("q'\"\\".to_string()),
        Just("héllo ✓ 日本".to_string()),
    ]
}

fn scalar() -> impl Strategy<Value = Node> {
    prop_oneof![
        yaml_string().prop_map(Node::str),
        // JSON numbers are float64 in sops 3.11: integers beyond 2^53 round like Go's.
        (-(1i64 << 53)..(1i64 << 53)).prop_map(Node::Int),
        (-1e6f64..1e6).prop_map(Node::Float),
        any::<bool>().prop_map(Node::Bool),
        Just(Node::Null),
    ]
}

fn dedupe(items: Vec<Item>) -> Vec<Item> {
    let mut seen = std::collections::HashSet::new();
    items
        .into_iter()
        .filter(|i| i.key.as_ref().is_none_or(|k| seen.insert(k.clone())))
        .collect()
}

fn tree(comments: bool) -> impl Strategy<Value = Vec<Item>> {
    let leaf = scalar();
    let node = leaf.prop_recursive(3, 24, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Node::Seq),
            prop::collection::vec((key(), inner), 0..4).prop_map(|v| {
                Node::Map(dedupe(
                    v.into_iter().map(|(k, n)| Item::pair(k, n)).collect(),
                ))
            }),
        ]
    });
    let item = prop_oneof![
        4 => (key(), node).prop_map(|(k, n)| Item::pair(k, n)),
        1 => "[a-z ]{0,10}".prop_map(move |c| if comments { Item::comment(format!(" {c}")) } else { Item::pair("c", Node::str(c)) }),
    ];
    prop::collection::vec(item, 1..6).prop_map(dedupe)
}

fn flat(value: &'static str) -> impl Strategy<Value = Vec<Item>> {
    prop::collection::vec((key(), value), 1..6).prop_map(|v| {
        dedupe(
            v.into_iter()
                .map(|(k, s)| Item::pair(k, Node::str(s)))
                .collect(),
        )
    })
}

struct Env {
    _dir: tempfile::TempDir,
    ids: Identities,
    single: Spec,
    groups: Spec,
}

fn env() -> Env {
    let dir = tempfile::tempdir().expect("tmp");
    let a = age::x25519::Identity::generate();
    let b = age::x25519::Identity::generate();
    use age::secrecy::ExposeSecret;
    let keys = format!(
        "{}\n{}\n",
        a.to_string().expose_secret(),
        b.to_string().expose_secret()
    );
    let path = dir.path().join("keys.txt");
    std::fs::write(&path, keys).expect("write");
    let (ids, w) = Identities::load_from(&Sources {
        explicit: vec![path],
        ..Sources::default()
    });
    assert!(w.is_empty());
    Env {
        _dir: dir,
        ids,
        single: Spec {
            groups: vec![vec![a.to_public().to_string(), b.to_public().to_string()]],
            ..Spec::default()
        },
        groups: Spec {
            groups: vec![
                vec![a.to_public().to_string()],
                vec![b.to_public().to_string()],
            ],
            shamir_threshold: 2,
            ..Spec::default()
        },
    }
}

fn render(format: Format, branch: &[Item]) -> Vec<u8> {
    let b = vec![branch.to_vec()];
    match format {
        Format::Yaml => sops::formats::yaml::emit(&b),
        Format::Json => sops::formats::json::emit(&b).expect("json"),
        Format::Dotenv => sops::formats::dotenv::emit(&b).expect("env"),
        Format::Ini => sops::formats::ini::emit(&b).expect("ini"),
        Format::Binary => sops::formats::binary::emit(&b).expect("bin"),
    }
}

fn round_trip(env: &Env, format: Format, plain: &[u8], spec: &Spec) -> Result<(), TestCaseError> {
    let origin = Origin::Stdin;
    let enc = encrypt::encrypt(&origin, plain, format, format, spec)
        .map_err(|e| TestCaseError::fail(format!("encrypt: {e}")))?;
    let doc = sops::decrypt(&origin, &enc, format, &env.ids, DecryptOptions::default())
        .map_err(|e| TestCaseError::fail(format!("decrypt: {e}")))?;
    let back = doc
        .render(format)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(
        String::from_utf8_lossy(&back),
        String::from_utf8_lossy(plain)
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn yaml_round_trips(branch in tree(true), groups in any::<bool>()) {
        let env = env();
        let plain = render(Format::Yaml, &branch);
        round_trip(&env, Format::Yaml, &plain, if groups { &env.groups } else { &env.single })?;
    }

    #[test]
    fn json_round_trips(branch in tree(false), groups in any::<bool>()) {
        let env = env();
        let plain = render(Format::Json, &branch);
        round_trip(&env, Format::Json, &plain, if groups { &env.groups } else { &env.single })?;
    }

    #[test]
    fn dotenv_round_trips(branch in flat("[a-zA-Z0-9 =#:'\"é✓]{0,16}"), groups in any::<bool>()) {
        let env = env();
        let plain = render(Format::Dotenv, &branch);
        round_trip(&env, Format::Dotenv, &plain, if groups { &env.groups } else { &env.single })?;
    }

    #[test]
    fn ini_round_trips(sections in prop::collection::vec((key(), flat("[a-zA-Z0-9][a-zA-Z0-9 .,é]{0,12}")), 1..4), groups in any::<bool>()) {
        let env = env();
        let branch = dedupe(sections.into_iter().map(|(k, items)| Item::pair(k, Node::Map(items))).collect());
        let plain = render(Format::Ini, &branch);
        round_trip(&env, Format::Ini, &plain, if groups { &env.groups } else { &env.single })?;
    }

    #[test]
    fn binary_round_trips(data in prop::collection::vec(any::<u8>(), 0..512), groups in any::<bool>()) {
        let env = env();
        round_trip(&env, Format::Binary, &data, if groups { &env.groups } else { &env.single })?;
    }
}

/// A sample of random documents also goes through the real sops.
#[test]
fn random_documents_decrypt_with_real_sops() {
    let Some(sops) = sops_support::sops() else {
        return;
    };
    let env = env();
    let dir = tempfile::tempdir().expect("tmp");
    let keys = env._dir.path().join("keys.txt");
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 12,
        ..ProptestConfig::default()
    });
    runner
        .run(&(tree(true), any::<bool>()), |(branch, groups)| {
            let plain = render(Format::Yaml, &branch);
            let spec = if groups { &env.groups } else { &env.single };
            let enc = encrypt::encrypt(&Origin::Stdin, &plain, Format::Yaml, Format::Yaml, spec)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let f = dir.path().join("r.yaml");
            std::fs::write(&f, enc).expect("write");
            let mut c = sops_support::sops_cmd_plain(&sops, &keys);
            c.arg("decrypt").arg(&f);
            let out = sops_support::run(c, None);
            prop_assert_eq!(
                out.status.code(),
                Some(0),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            prop_assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&plain)
            );
            Ok(())
        })
        .expect("sops agrees");
}
