//! `legacy-gateway check` and `serve` on broken configuration and mappings, through the real
//! binary: the exit status, and an error on stderr in the form `FILE:LINE: field `F`: message`
//! that points at the line and field an operator has to fix.

mod common;

use std::path::{Path, PathBuf};

use common::binary::{Binary, Ran};

fn shipped_mappings() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings")
}

/// Runs to completion (a `serve` that starts by mistake is killed by the harness's guard).
fn run(args: &[&str]) -> Ran {
    Binary::new(args).rust_log("info").run()
}

/// `check --mappings DIR`.
fn check_mappings(dir: &Path) -> Ran {
    run(&["check", "--mappings", dir.to_str().unwrap()])
}

/// A copy of the shipped mappings in a temporary directory.
fn mappings_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(shipped_mappings()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
        }
    }
    dir
}

/// Replaces the first `from` in `file` with `to`; returns the 1-based line of the change and
/// how many times `block` (a `[[table]]` header) occurs before it, i.e. the array index of the
/// entry that holds it.
fn break_file(file: &Path, from: &str, to: &str, block: &str) -> (usize, usize) {
    let text = std::fs::read_to_string(file).unwrap();
    let at = text
        .find(from)
        .unwrap_or_else(|| panic!("{from:?} not in {}", file.display()));
    let line = text[..at].matches('\n').count() + 1;
    let index = text[..at].matches(block).count() - 1;
    std::fs::write(file, text.replacen(from, to, 1)).unwrap();
    (line, index)
}

/// The one error line: `error: FILE:LINE: field `FIELD`: message`.
fn assert_error(o: &Ran, file: &Path, line: usize, field: &str, message_part: &str) {
    assert!(!o.success(), "must fail; stderr: {}", o.stderr);
    let err = &o.stderr;
    let prefix = format!("{}:{line}: field `{field}`: ", file.display());
    let hit = err
        .lines()
        .find(|l| l.contains(&prefix))
        .unwrap_or_else(|| panic!("no line with {prefix:?} in stderr:\n{err}"));
    assert!(
        hit.contains(message_part),
        "{hit:?} should mention {message_part:?}"
    );
}

#[test]
fn check_accepts_the_shipped_mappings() {
    let o = run(&["check"]);
    assert!(o.success(), "{}", o.stderr);
    assert!(o.stdout.starts_with("ok: "));

    let dir = shipped_mappings();
    let o = check_mappings(&dir);
    assert!(o.success(), "{}", o.stderr);
    let out = o.stdout;
    assert!(out.starts_with("ok: "), "{out}");
    assert!(out.contains(dir.to_str().unwrap()), "{out}");
}

/// Breaks a copy of the shipped mappings (the first `from` in `file_name` becomes `to`) and
/// asserts that `check` fails naming that file, the changed line, `field(i)` (`i`: the index
/// of the `block` entry holding the change) and `message_part`.
fn assert_check_names(
    file_name: &str,
    (from, to): (&str, &str),
    block: &str,
    field: impl Fn(usize) -> String,
    message_part: &str,
) {
    let dir = mappings_copy();
    let file = dir.path().join(file_name);
    let (line, i) = break_file(&file, from, to, block);
    let o = check_mappings(dir.path());
    assert_error(&o, &file, line, &field(i), message_part);
}

#[test]
fn check_names_an_unknown_event_in_user_api_toml() {
    assert_check_names(
        "user-api.toml",
        ("\"CHGPWD\"]", "\"NOPE\"]"),
        "[[parts]]",
        |i| format!("parts[{i}].events[1]"),
        "\"NOPE\"",
    );
}

#[test]
fn check_names_an_unknown_event_of_the_read_route() {
    assert_check_names(
        "user-api.toml",
        (
            "events = [\"GETUSERBYID\"]\n# A read",
            "events = [\"NOPE\"]\n# A read",
        ),
        "[read]",
        |_| "read.events[0]".into(),
        "\"NOPE\"",
    );
}

#[test]
fn check_names_a_duplicate_event_id_in_events_toml() {
    assert_check_names(
        "events.toml",
        ("id = 22\n", "id = 1042\n"),
        "[[events]]",
        |i| format!("events[{i}].id"),
        "1042",
    );
}

#[test]
fn check_names_a_bad_regex() {
    assert_check_names(
        "user-api.toml",
        ("text = \"(?i)password\"", "text = \"(?i)pass(word\""),
        "[[errors]]",
        |i| format!("errors[{i}].text"),
        "invalid regex",
    );
}

#[test]
fn check_names_a_toml_type_error() {
    assert_check_names(
        "events.toml",
        ("id = 22\n", "id = \"22\"\n"),
        "[[events]]",
        // CHGPWD is the second [[events]] block.
        |_| "events[1].id".into(),
        "invalid type",
    );
}

/// A misspelt secret field masks nothing, and the real field's values would reach logs.
#[test]
fn check_names_a_secret_field_the_mapping_does_not_have() {
    assert_check_names(
        "user-api.toml",
        (
            "secret_fields = [\"Password\"]",
            "secret_fields = [\"Passwrd\"]",
        ),
        "[route]",
        |_| "route.secret_fields[0]".into(),
        "\"Passwrd\" is no field of any part",
    );
}

#[test]
fn check_names_a_missing_mapping_file() {
    let dir = mappings_copy();
    let file = dir.path().join("events.toml");
    std::fs::remove_file(&file).unwrap();
    let o = check_mappings(dir.path());
    assert!(!o.success());
    // The whole file is missing: no line to name.
    assert!(
        o.stderr
            .contains(&format!("{}: cannot read the file", file.display())),
        "{}",
        o.stderr
    );
}

#[test]
fn check_names_the_line_of_a_bad_field_type() {
    assert_check_names(
        "user-api.toml",
        ("IgnoreProvider = \"boolean\"", "IgnoreProvider = \"bool\""),
        "[[parts]]",
        |i| format!("parts[{i}].fields.IgnoreProvider"),
        "expected one of",
    );
}

fn config_file(dir: &Path, text: &str) -> PathBuf {
    let f = dir.join("gateway.toml");
    std::fs::write(&f, text).unwrap();
    f
}

#[test]
fn check_names_the_bad_line_of_a_configuration_file() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, usize, &str, &str); 9] = [
        (
            "[[tenants]]\nhost = \"https://paper.test\"\nsource_system = \"s\"\nclient_code = \"c\"\npaper_code = \"p\"\nclient_group_code = \"g\"\nreturn_url = \"https://paper.test/r\"\n",
            1,
            "tenants[0].host",
            "never match",
        ),
        (
            "[[tenants]]\nhost = \"paper.test:99999\"\nsource_system = \"s\"\nclient_code = \"c\"\npaper_code = \"p\"\nclient_group_code = \"g\"\nreturn_url = \"https://paper.test/r\"\n",
            1,
            "tenants[0].host",
            "port",
        ),
        (
            "listen = \"0.0.0.0:8080\"\nadmin_listen = \"0.0.0.0:9901\"\n",
            2,
            "admin_listen",
            "not a loopback address",
        ),
        (
            "listen = \"127.0.0.1:0\"\n\n[limits]\nbogus = 1\n",
            4,
            "limits.bogus",
            "unknown field",
        ),
        (
            "[limits]\nbody_bytes = 0\n",
            2,
            "limits.body_bytes",
            "must be greater than 0",
        ),
        (
            "# comment\nlisten = \"nowhere\"\n",
            2,
            "listen",
            "expected an address",
        ),
        (
            "orchestrator_url = \"ftp://example.test\"\n",
            1,
            "orchestrator_url",
            "http",
        ),
        (
            "[limits]\nrequest_timeout_ms = 1000\nupstream_timeout_ms = 2000\n",
            3,
            "limits.upstream_timeout_ms",
            "shorter than",
        ),
        (
            "[limits]\nbody_bytes = \"big\"\n",
            2,
            "limits.body_bytes",
            "invalid type",
        ),
    ];
    for (text, line, field, message) in cases {
        let f = config_file(dir.path(), text);
        let o = run(&["check", "--config", f.to_str().unwrap()]);
        assert_error(&o, &f, line, field, message);
    }
    // And a good one passes, naming the file it read.
    let f = config_file(
        dir.path(),
        "listen = \"127.0.0.1:0\"\n[limits]\nbody_bytes = 1024\n",
    );
    let o = run(&["check", "--config", f.to_str().unwrap()]);
    assert!(o.success(), "{}", o.stderr);
    assert!(o.stdout.contains(f.to_str().unwrap()));
    // A public admin listener is accepted once it has a token.
    let token = dir.path().join("admin-token");
    std::fs::write(&token, "t0ken-t0ken-t0ken\n").unwrap();
    let f = config_file(
        dir.path(),
        &format!("admin_listen = \"0.0.0.0:9901\"\nadmin_token_file = {token:?}\n"),
    );
    let o = run(&["check", "--config", f.to_str().unwrap()]);
    assert!(o.success(), "{}", o.stderr);
}

/// The mistakes `check` once let through, each refused with the line to fix.
#[test]
fn check_refuses_what_would_silently_misbehave() {
    let dir = tempfile::tempdir().unwrap();
    let backends =
        "user_api_url = \"http://127.0.0.1:1\"\nregistry_api_url = \"http://127.0.0.1:2\"\n";
    let token = dir.path().join("admin-token");
    std::fs::write(&token, "abc\n").unwrap();
    let cases: Vec<(String, usize, &str, &str)> = vec![
        // A rule behind a broader one for the same tenant never matches.
        (
            format!("{backends}\n[[modes]]\nroute = \"user-api\"\ntenant = \"CA\"\nmode = \"translate\"\n\n[[modes]]\nroute = \"user-api.read\"\ntenant = \"CA\"\nmode = \"legacy\"\n"),
            9,
            "modes[1]",
            "can never match: modes[0] comes first",
        ),
        // No X-ClientCode or Host ends in a space.
        (
            format!("{backends}[[modes]]\ntenant = \"ca \"\nmode = \"legacy\"\n"),
            3,
            "modes[0].tenant",
            "\"ca \"",
        ),
        // A guessable admin token.
        (
            format!("admin_token_file = {token:?}\n"),
            1,
            "admin_token_file",
            "shorter than 16 characters",
        ),
        // The global mode is blamed on its line.
        (
            "# legacy everywhere\nmode = \"legacy\"\nuser_api_url = \"http://127.0.0.1:1\"\n".into(),
            2,
            "mode",
            "set registry_api_url, or add a [[modes]] rule with route = \"registry\"",
        ),
        // No orchestrator on a public listener: the sandbox would serve the world.
        (
            "listen = \"0.0.0.0:8080\"\n".into(),
            1,
            "listen",
            "not a loopback address and no orchestrator is configured: set --orchestrator",
        ),
        (
            "orchestrator_url = \"http://127.0.0.1:1\"\nsandbox = true\n".into(),
            2,
            "sandbox",
            "both configured",
        ),
    ];
    for (text, line, field, message) in cases {
        let f = config_file(dir.path(), &text);
        let o = run(&["check", "--config", f.to_str().unwrap()]);
        assert_error(&o, &f, line, field, message);
        assert!(!o.stderr.contains("abc"), "{}", o.stderr);
    }
    // A User-API-only migration needs no registry URL once the action API translates.
    let f = config_file(
        dir.path(),
        "mode = \"legacy\"\nuser_api_url = \"http://127.0.0.1:1\"\n\n[[modes]]\nroute = \"registry\"\nmode = \"translate\"\n",
    );
    let o = run(&["check", "--config", f.to_str().unwrap()]);
    assert!(o.success(), "{}", o.stderr);
    // The admin token from the environment is held to the same minimum, and not echoed.
    let o = Binary::new(["check"])
        .env("LEGACY_GATEWAY_ADMIN_TOKEN", "abc")
        .run();
    assert!(!o.success());
    assert!(
        o.stderr.contains("LEGACY_GATEWAY_ADMIN_TOKEN: field `admin_token`: the admin token is shorter than 16 characters"),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains("abc"), "{}", o.stderr);
}

/// The embedded sandbox answers any token with fake users: off loopback it is served only
/// when asked for by name, and `check` judges the flags and variables as `serve` does.
#[test]
fn the_sandbox_off_loopback_is_served_only_on_purpose() {
    let o = Binary::new(["check"])
        .env("LEGACY_GATEWAY_LISTEN", "0.0.0.0:8080")
        .run();
    assert!(!o.success(), "{}", o.stdout);
    assert!(
        o.stderr.contains("--listen or LEGACY_GATEWAY_LISTEN: field `listen`: 0.0.0.0:8080 is not a loopback address"),
        "{}",
        o.stderr
    );
    for named in ["--orchestrator", "--sandbox", "LEGACY_GATEWAY_SANDBOX"] {
        assert!(o.stderr.contains(named), "{named}: {}", o.stderr);
    }
    // `serve` refuses the same, before it binds anything (as the Docker image is set up).
    let o = Binary::new(["serve", "--admin-listen", "127.0.0.1:0"])
        .env("LEGACY_GATEWAY_LISTEN", "0.0.0.0:0")
        .rust_log("info")
        .run();
    assert!(!o.success());
    assert!(
        o.stderr
            .contains("no orchestrator is configured: set --orchestrator"),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains("listening"), "{}", o.stderr);
    // Asked for by name: accepted, and `check` says what it will serve.
    for (var, value) in [
        ("LEGACY_GATEWAY_SANDBOX", "true"),
        ("LEGACY_GATEWAY_ORCHESTRATOR", "https://v4.example.test"),
    ] {
        let o = Binary::new(["check"])
            .env("LEGACY_GATEWAY_LISTEN", "0.0.0.0:8080")
            .env(var, value)
            .run();
        assert!(o.success(), "{var}: {}", o.stderr);
    }
    let o = run(&["check", "--listen", "0.0.0.0:8080", "--sandbox"]);
    assert!(
        o.stdout.contains("serves the embedded sandbox"),
        "{}",
        o.stdout
    );
    // The quick start: loopback, no orchestrator, no flag.
    let o = run(&["check"]);
    assert!(o.success(), "{}", o.stderr);
    assert!(
        o.stdout.contains("serves the embedded sandbox"),
        "{}",
        o.stdout
    );
}

/// `serve` with `args`, both listeners on free ports: it must refuse before it binds them.
fn serve_on_free_ports(args: &[&str]) -> Ran {
    let mut all = vec![
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ];
    all.extend_from_slice(args);
    run(&all)
}

#[test]
fn serve_refuses_to_start_on_a_bad_configuration_or_mappings() {
    let dir = tempfile::tempdir().unwrap();
    let f = config_file(dir.path(), "[limits]\nbody_bytes = 0\n");
    let o = serve_on_free_ports(&["--config", f.to_str().unwrap()]);
    assert_error(&o, &f, 2, "limits.body_bytes", "must be greater than 0");
    assert!(!o.stderr.contains("listening"), "{}", o.stderr);

    let maps = mappings_copy();
    let file = maps.path().join("user-api.toml");
    let (line, i) = break_file(&file, "\"CHGPWD\"]", "\"NOPE\"]", "[[parts]]");
    let field = format!("parts[{i}].events[1]");
    let o = serve_on_free_ports(&["--mappings", maps.path().to_str().unwrap()]);
    assert_error(&o, &file, line, &field, "\"NOPE\"");
    assert!(!o.stderr.contains("listening"), "{}", o.stderr);

    // The same through the configuration file's mappings_dir.
    let f = config_file(
        dir.path(),
        &format!("mappings_dir = {:?}\n", maps.path().to_str().unwrap()),
    );
    let o = serve_on_free_ports(&["--config", f.to_str().unwrap()]);
    assert_error(&o, &file, line, &field, "\"NOPE\"");
}

/// A value set by a flag or the environment is blamed on that flag and variable, not on a
/// line of a file that does not hold it.
#[test]
fn serve_names_the_environment_variable_that_opened_the_admin_listener() {
    let o = Binary::new(["serve", "--listen", "127.0.0.1:0"])
        .env("LEGACY_GATEWAY_ADMIN_LISTEN", "0.0.0.0:0")
        .rust_log("info")
        .run();
    assert!(!o.status.success(), "{}", o.stderr);
    assert!(
        o.stderr
            .contains("--admin-listen or LEGACY_GATEWAY_ADMIN_LISTEN: field `admin_listen`: is not a loopback address"),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains("<defaults>"), "{}", o.stderr);
    assert!(!o.stderr.contains("listening"), "{}", o.stderr);

    // In a file, the same value is named by its line.
    let dir = tempfile::tempdir().unwrap();
    let f = config_file(dir.path(), "workers = 1\nadmin_listen = \"0.0.0.0:0\"\n");
    let o = run(&[
        "serve",
        "--config",
        f.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_error(&o, &f, 2, "admin_listen", "is not a loopback address");
}

/// The example configuration the README points to stays valid.
#[test]
fn the_example_configuration_is_valid() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/config/gateway.example.toml");
    let o = Binary::new(["check", "--config", file]).run();
    assert!(o.success(), "{}", o.stderr);
}
