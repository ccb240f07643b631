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


class Circles(unittest.TestCase):
    def test_files_of_one_folder_in_a_circle(self):
        code, out = check({
            "lib.rs": "pub mod events;",
            "events/mod.rs": "mod record;\nmod transcode;",
            "events/record.rs": "use super::transcode::Entries;\npub struct Case;",
            "events/transcode.rs": "use super::record::Case;\npub struct Entries;",
        })
        self.assertEqual(code, 1, out)
        self.assertIn("an import circle in `events`", out)
        self.assertIn("src/events/record.rs uses src/events/transcode.rs", out)
        self.assertIn("src/events/transcode.rs uses src/events/record.rs", out)

    def test_a_folder_and_a_file_deep_down(self):
        code, out = check({
            "lib.rs": "pub mod mapping;",
            "mapping/mod.rs": "mod user_api;\nmod registry;",
            "mapping/registry.rs": "pub fn parse() {}",
            "mapping/user_api/mod.rs": "mod load;\nmod read;",
            "mapping/user_api/load.rs": "use super::read::load_read;\npub fn event_list() {}",
            "mapping/user_api/read.rs": "pub fn load_read() { crate::mapping::user_api::load::event_list() }",
        })
        self.assertEqual(code, 1, out)
        self.assertIn("an import circle in `mapping::user_api`", out)
        self.assertIn("mapping/user_api/load.rs", out)

    def test_a_circle_between_a_file_and_a_folder(self):
        code, out = check({
            "lib.rs": "pub mod shadow;",
            "shadow/mod.rs": "mod report;\nmod copy;",
            "shadow/report.rs": "use super::copy::inner::Masked;\npub struct RowId;",
            "shadow/copy/mod.rs": "pub mod inner;",
            "shadow/copy/inner.rs": "use crate::shadow::report::RowId;\npub struct Masked;",
        })
        self.assertEqual(code, 1, out)
        self.assertIn("shadow::copy → shadow::report → shadow::copy", out)
        self.assertIn("src/shadow/copy/inner.rs uses src/shadow/report.rs", out)

    def test_a_re_export_does_not_hide_a_circle(self):
        code, out = check({
            "lib.rs": "pub mod events;",
            "events/mod.rs": "mod record;\nmod transcode;\npub use transcode::Entries;",
            "events/record.rs": "use super::Entries;\npub struct Case;",
            "events/transcode.rs": "use super::record::Case;\npub struct Entries;",
        })
        self.assertEqual(code, 1, out)
        self.assertIn("src/events/record.rs uses src/events/transcode.rs", out)


class NoCircle(unittest.TestCase):
    def test_a_module_and_its_own_children_use_each_other(self):
        code, out = check({
            "lib.rs": "pub mod events;",
            "events/mod.rs": "mod record;\npub use record::ToV4;\npub enum RecordError {}",
            "events/record.rs": "use super::RecordError;\npub struct ToV4;",
        })
        self.assertEqual(code, 0, out)

    def test_a_doc_link_is_no_import(self):
        code, out = check({
            "lib.rs": "pub mod translate;",
            "translate/mod.rs": "pub mod case;\npub mod rekey;",
            "translate/case.rs": "//! See [`super::rekey`].\npub enum CaseError {}",
            "translate/rekey.rs": "use super::case::CaseError;\nlet s = \"super::case // not a comment\";",
        })
        self.assertEqual(code, 0, out)

    def test_the_foo_rs_beside_foo_style_is_read_too(self):
        code, out = check({
            "lib.rs": "pub mod redact;",
            "redact.rs": "mod forms;\nmod known;",
            "redact/forms.rs": "use super::known::Known;",
            "redact/known.rs": "use super::forms::Form;",
        })
        self.assertEqual(code, 1, out)
        self.assertIn("an import circle in `redact`", out)


class Layers(unittest.TestCase):
    def test_an_import_up_the_layers_names_its_file(self):
        code, out = check({
            "lib.rs": "pub mod body;\npub mod cli;",
            "body.rs": "use crate::cli::Cli;",
            "cli.rs": "pub struct Cli;",
        })
        self.assertEqual(code, 1, out)
        self.assertIn("`body` (layer 0) uses `cli`", out)
        self.assertIn("(src/body.rs)", out)


if __name__ == "__main__":
    unittest.main()
