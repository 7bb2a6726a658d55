//! Usage errors and help: one line on stderr, exit status 2.

use super::*;

#[test]
fn usage_errors_exit_2_with_one_line() {
    let cases: &[(&[&str], &str)] = &[
        (&[], "canary-tagger: no command given; see `canary-tagger help`\n"),
        (
            &["valdate", "x.json"],
            "canary-tagger: unknown command \"valdate\" (did you mean validate?); see `canary-tagger help`\n",
        ),
        (
            &["validate"],
            "canary-tagger: validate: give at least one FILE; see `canary-tagger help validate`\n",
        ),
        (
            &["explain", "x.json", "--hedaer", "a: b"],
            "canary-tagger: explain: unknown option --hedaer (did you mean --header?); see `canary-tagger help explain`\n",
        ),
        (&["explain", "x.json", "--path"], "canary-tagger: explain: --path needs a value\n"),
        (
            &["explain", "x.json", "--header", "no-colon"],
            "canary-tagger: explain: --header expects 'NAME: VALUE', got \"no-colon\"\n",
        ),
        (
            &["explain", "x.json", "--cookie", "novalue"],
            "canary-tagger: explain: --cookie expects NAME=VALUE, got \"novalue\"\n",
        ),
        (
            &["explain", "x.json", "--ip", "10.0.0.300"],
            "canary-tagger: explain: --ip \"10.0.0.300\" is not an address (203.0.113.7, 203.0.113.7:51000, 2001:db8::1 or [2001:db8::1]:443)\n",
        ),
        (
            &["explain", "x.json", "--seed", "many"],
            "canary-tagger: explain: --seed \"many\" is not a number (decimal, or hex with 0x)\n",
        ),
        (
            &["explain"],
            "canary-tagger: explain: give the configuration FILE; see `canary-tagger help explain`\n",
        ),
        (
            &["explain", "/nonexistent.json"],
            "canary-tagger: cannot read /nonexistent.json: no such file or directory\n",
        ),
        (
            &["render", "x.json", "--host", "a.example.com"],
            "canary-tagger: render: --service is required; see `canary-tagger help render`\n",
        ),
        (&["schema", "extra"], "canary-tagger: schema: unexpected argument \"extra\"; it takes none\n"),
    ];
    for (args, expected) in cases {
        assert_usage_error(args, &run(args), expected);
    }
}

#[test]
fn help_and_version() {
    for args in [
        &["help"][..],
        &["--help"],
        &["help", "explain"],
        &["explain", "--help"],
        &["render", "-h"],
        &["help", "status"],
        &["status", "--help"],
        &["help", "watch"],
        &["watch", "-h"],
    ] {
        let out = run(args);
        assert_eq!(out.code, 0, "{args:?}");
        assert!(out.stdout.contains("Usage:"), "{args:?}: {}", out.stdout);
    }
    let out = run(&["--version"]);
    assert_eq!(
        out.stdout,
        format!("canary-tagger {}\n", env!("CARGO_PKG_VERSION"))
    );
}
