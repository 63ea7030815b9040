//! docs/configuration.md against the code: every key of `twinwire.yaml` with its default, the
//! flag of each, and the flags of `twinwire run` that have no key.

use clap::CommandFactory;
use serde_json::{json, Value};
use twinwire::config::Config;
use twinwire_tests::config_reference::{check_keys, code, configuration_page, key_rows, table};

/// A document as `twinwire.yaml` (JSON is YAML), read by the broker's own parser.
fn parse(doc: &Value) -> Result<String, String> {
    Config::parse(&doc.to_string())
        .map(|config| format!("{config:?}"))
        .map_err(|e| e.to_string())
}

#[test]
fn every_key_of_twinwire_yaml_is_documented_with_its_default() {
    let rows = table(&configuration_page(), "## twinwire.yaml");
    let examples = [
        ("tls.certificate", json!("cert.pem")),
        ("tls.private_key", json!("key.pem")),
        ("auth.users[].name", json!("alice")),
        ("auth.users[].password_hash", json!("$2b$05$x")),
    ];
    let problems = check_keys(&key_rows(&rows), &examples, &parse);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The long flag a cell names: "`--user NAME:PASSWORD`" is `user`.
fn flag(cell: &str) -> Option<String> {
    let text = code(cell)?.strip_prefix("--")?;
    Some(text.split(' ').next().unwrap_or(text).to_owned())
}

#[test]
fn every_flag_of_twinwire_run_is_documented() {
    let page = configuration_page();
    let with_keys: Vec<String> = table(&page, "## twinwire.yaml")
        .iter()
        .filter_map(|cells| flag(&cells[2]))
        .collect();
    let only = table(&page, "### Flags only");
    let run = twinwire::cli::Cli::command();
    let run = run.find_subcommand("run").expect("twinwire run");
    let flags: Vec<(String, Vec<String>)> = run
        .get_arguments()
        .filter_map(|a| {
            let defaults = a
                .get_default_values()
                .iter()
                .map(|d| d.to_string_lossy().into_owned())
                .collect();
            Some((a.get_long()?.to_owned(), defaults))
        })
        .collect();
    for (long, _) in &flags {
        let documented = with_keys.contains(long)
            || only
                .iter()
                .any(|cells| flag(&cells[0]).as_ref() == Some(long));
        assert!(documented, "--{long} is not in docs/configuration.md");
    }
    for name in with_keys.iter().chain(
        only.iter()
            .filter_map(|cells| flag(&cells[0]))
            .collect::<Vec<_>>()
            .iter(),
    ) {
        assert!(
            flags.iter().any(|(long, _)| long == name),
            "--{name} is documented but `twinwire run` has no such flag"
        );
    }
    // A flag without a key documents its own default.
    for cells in &only {
        let name = flag(&cells[0]).expect("a `--flag` cell");
        let (_, defaults) = flags
            .iter()
            .find(|(l, _)| *l == name)
            .expect("checked above");
        let documented = code(&cells[1]).map(str::to_owned);
        assert_eq!(
            documented.as_ref(),
            defaults.first(),
            "--{name}: documented default {}",
            cells[1]
        );
    }
}
