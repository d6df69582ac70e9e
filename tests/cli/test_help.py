"""``router COMMAND --help``: what each command does, each option's default, and settings."""

from __future__ import annotations

import pytest

from router.settings import Settings

from ._run import router

COMMANDS = ("check", "test", "explain", "schema", "serve")


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_describes_itself_and_its_exit_status(tmp_path, command):
    done = router(command, "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    usage, description, *_ = done.stdout.split("\n\n")
    assert usage.startswith(f"usage: router {command}")
    assert len(description.split()) >= 8  # a sentence, not just a name
    assert "exit status:" in done.stdout


@pytest.mark.parametrize(
    ("command", "defaults"),
    [
        ("check", ["(default: $ROUTER_RULES, else ./rules)", "(default: text)"]),
        ("test", ["(default: $ROUTER_RULES, else ./rules)", "(default: text)", "(default: off)"]),
        ("explain", ["(default: $ROUTER_RULES, else ./rules)", "(default: now)", "(required)"]),
        (
            "serve",
            [
                "(default: $ROUTER_RULES, else ./rules)",
                "(default: $ROUTER_HOST, else 127.0.0.1)",
                "(default: $ROUTER_PORT, else 8080)",
                "(default: $ROUTER_WORKERS, else 1)",
            ],
        ),
    ],
)
def test_each_option_says_its_default(tmp_path, command, defaults):
    text = " ".join(router(command, "--help", cwd=tmp_path).stdout.split())
    for default in defaults:
        assert default in text


def test_serve_help_lists_every_setting_with_its_default_from_the_model(tmp_path):
    from router.cli import settings_defaults

    done = router("serve", "--help", cwd=tmp_path)
    listed = {}
    section = done.stdout.split("\nenvironment (")[1]
    for line in section.splitlines()[2:]:
        if not line.startswith("  "):
            break
        name, default = line.split(maxsplit=1)
        listed[name] = default
    assert list(listed) == [field.alias for field in Settings.model_fields.values()]
    assert listed == settings_defaults()
    assert listed["ROUTER_BUDGET_MS"] == str(Settings.model_fields["budget_ms"].default)
    assert listed["ROUTER_RULES"] == "./rules"
    assert listed["ROUTER_API_KEYS"] == "(empty)"
