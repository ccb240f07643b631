#!/usr/bin/env python3
"""What `.ci/layers.py` refuses and allows, on small source trees written here: a circle
between files or folders at any depth (also through a re-export), named by its files; and
what is no circle (a module and its own children, a doc link). Run: python3 .ci/test_layers.py"""
import os
import subprocess
import sys
import tempfile
import unittest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "layers.py")


def check(files):
    """Runs layers.py on a tree of `files` (path → text); returns (exit code, output)."""
    with tempfile.TemporaryDirectory() as root:
        for path, text in files.items():
            full = os.path.join(root, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w", encoding="utf-8") as f:
                f.write(text)
        run = subprocess.run([sys.executable, SCRIPT, root], capture_output=True, text=True)
        # Files are named from the folder above the root, as `src/…` in the repository.
        return run.returncode, (run.stdout + run.stderr).replace(os.path.basename(root), "src")


# Trees layers.py refuses, each with what its output must say.
REFUSED = {
    "files of one folder in a circle": (
        {
            "lib.rs": "pub mod events;",
            "events/mod.rs": "mod record;\nmod transcode;",
            "events/record.rs": "use super::transcode::Entries;\npub struct Case;",
            "events/transcode.rs": "use super::record::Case;\npub struct Entries;",
        },
        ["an import circle in `events`", "src/events/record.rs uses src/events/transcode.rs",
         "src/events/transcode.rs uses src/events/record.rs"],
    ),
    "a circle deep down, through an absolute path": (
        {
            "lib.rs": "pub mod mapping;",
            "mapping/mod.rs": "mod user_api;",
            "mapping/user_api/mod.rs": "mod load;\nmod read;",
            "mapping/user_api/load.rs": "use super::read::load_read;\npub fn event_list() {}",
            "mapping/user_api/read.rs": "fn f() { crate::mapping::user_api::load::event_list() }",
        },
        ["an import circle in `mapping::user_api`", "src/mapping/user_api/read.rs uses src/mapping/user_api/load.rs"],
    ),
    "a file and a folder in a circle": (
        {
            "lib.rs": "pub mod shadow;",
            "shadow/mod.rs": "mod report;\nmod copy;",
            "shadow/report.rs": "use super::copy::inner::Masked;\npub struct RowId;",
            "shadow/copy/mod.rs": "pub mod inner;",
            "shadow/copy/inner.rs": "use crate::shadow::report::RowId;\npub struct Masked;",
        },
        ["shadow::copy → shadow::report → shadow::copy", "src/shadow/copy/inner.rs uses src/shadow/report.rs"],
    ),
    "a circle through a re-export": (
        {
            "lib.rs": "pub mod events;",
            "events/mod.rs": "mod record;\nmod transcode;\npub use transcode::Entries;",
            "events/record.rs": "use super::Entries;\npub struct Case;",
            "events/transcode.rs": "use super::record::Case;\npub struct Entries;",
        },
        ["src/events/record.rs uses src/events/transcode.rs"],
    ),
    "a circle in the foo.rs-beside-foo/ style": (
        {
            "lib.rs": "pub mod redact;",
            "redact.rs": "mod forms;\nmod known;",
            "redact/forms.rs": "use super::known::Known;",
            "redact/known.rs": "use super::forms::Form;",
        },
        ["an import circle in `redact`"],
    ),
    "an import up the layers": (
        {"lib.rs": "pub mod body;\npub mod cli;", "body.rs": "use crate::cli::Cli;", "cli.rs": ""},
        ["`body` (layer 0) uses `cli`", "(src/body.rs)"],
    ),
}

# Trees with no circle.
ALLOWED = {
    "a module and its own children use each other": {
        "lib.rs": "pub mod events;",
        "events/mod.rs": "mod record;\npub use record::ToV4;\npub enum RecordError {}",
        "events/record.rs": "use super::RecordError;\npub struct ToV4;",
    },
    "a doc link, or a path in a string, is no import": {
        "lib.rs": "pub mod translate;",
        "translate/mod.rs": "pub mod case;\npub mod rekey;",
        "translate/case.rs": "//! See [`super::rekey`].\npub enum CaseError {}",
        "translate/rekey.rs": "use super::case::CaseError;\nconst S: &str = \"super::case // x\";",
    },
}


class LayersPy(unittest.TestCase):
    def test_refuses(self):
        for name, (files, says) in REFUSED.items():
            with self.subTest(name):
                code, out = check(files)
                self.assertEqual(code, 1, out)
                for text in says:
                    self.assertIn(text, out)

    def test_allows(self):
        for name, files in ALLOWED.items():
            with self.subTest(name):
                code, out = check(files)
                self.assertEqual(code, 0, out)


if __name__ == "__main__":
    unittest.main()
