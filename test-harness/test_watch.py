"""`canary-tagger watch` in a real terminal: tmux, 80x24, against a real Envoy.

The screen is redrawn in place (one heading, nothing scrolled), shows the counted traffic,
follows new traffic (totals, and a rate while requests keep coming), fits 80 columns, and
quits on q and on Ctrl-C with the terminal as it was (main screen back, canonical mode).
Colour only without NO_COLOR. Without a terminal, or with a source that cannot be read, it
is one line on stderr and exit status 2.

Needs tmux; skipped without it.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import threading
import time

import pytest

from canary_e2e.cli import cli_binary
from canary_e2e.envoy_process import free_port
from canary_e2e.rollout import IstioNamedEnvoy, plugin_config, send_traffic

# A bound for a stuck screen, not a speed requirement.
SCREEN_TIMEOUT_S = 30.0
SGR_COLOUR = re.compile(r"\x1b\[[0-9;]*(3[0-7]|38;5;\d+|9[0-7])m")


@pytest.fixture(scope="module")
def rollout(tmp_path_factory):
    envoy = IstioNamedEnvoy(plugin_config(), work_dir=tmp_path_factory.mktemp("envoy"))
    envoy.start()
    try:
        yield envoy, send_traffic(envoy)
    finally:
        envoy.stop()


class Tmux:
    """A tmux server of this test alone (its own socket), 80x24."""

    def __init__(self):
        if shutil.which("tmux") is None:
            pytest.skip("tmux is not installed")
        self.base = ["tmux", "-L", f"canary-watch-{os.getpid()}-{free_port()}", "-f", "/dev/null"]

    def start(self, command: str, env: dict[str, str] | None = None):
        """Runs `command` in a shell in the window; afterwards the shell prints the exit
        status and the terminal mode, then DONE, and waits (so the pane can still be read)."""
        settings = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items())
        script = (f"env -u NO_COLOR {settings} {command}; echo EXIT=$?; "
                  "stty -a | tr ' ' '\\n' | grep -x -- '-\\?icanon'; echo DONE; exec sleep 600")
        subprocess.run([*self.base, "new-session", "-d", "-x", "80", "-y", "24", "-s", "watch",
                        "sh", "-c", script], check=True)

    def pane(self, escapes: bool = False) -> str:
        args = [*self.base, "capture-pane", "-p", "-t", "watch"] + (["-e"] if escapes else [])
        return subprocess.run(args, capture_output=True, text=True, check=True).stdout

    def history(self) -> str:
        return subprocess.run([*self.base, "capture-pane", "-p", "-S", "-", "-t", "watch"],
                              capture_output=True, text=True, check=True).stdout

    def keys(self, *keys: str):
        subprocess.run([*self.base, "send-keys", "-t", "watch", *keys], check=True)

    def wait_for(self, done, what: str) -> str:
        deadline = time.monotonic() + SCREEN_TIMEOUT_S
        while True:
            screen = self.pane()
            if done(screen):
                return screen
            assert time.monotonic() < deadline, f"no {what} after {SCREEN_TIMEOUT_S}s:\n{screen}"
            time.sleep(0.1)

    def stop(self):
        subprocess.run([*self.base, "kill-server"], capture_output=True)


@pytest.fixture
def tmux():
    server = Tmux()
    try:
        yield server
    finally:
        server.stop()


def watch_command(envoy) -> str:
    return f"{shlex.quote(str(cli_binary()))} watch --admin {envoy.admin_url} --interval 300ms"


def row(screen: str, name: str) -> list[str]:
    """The words of the first line that starts with `name`."""
    for line in screen.splitlines():
        words = line.split()
        if words and words[0] == name:
            return words
    return []


def test_watch_redraws_in_place_follows_traffic_and_quits_on_q(rollout, tmux):
    envoy, expected = rollout
    tmux.start(watch_command(envoy))
    v1 = expected["versions"]["v1"]["requests"]
    screen = tmux.wait_for(lambda s: row(s, "v1")[1:2] == [str(v1)], "v1 total")
    lines = screen.splitlines()
    assert len(lines) <= 24 and all(len(line) <= 80 for line in lines), screen
    assert "RAMP beta" in screen and "50%" in screen and "UPSTREAM" in screen
    assert row(screen, "v3")[1] == str(expected["versions"]["v3"]["requests"])

    for _ in range(10):
        envoy.request("/", headers={"cookie": "user=tester"})
    tmux.wait_for(lambda s: row(s, "v2")[1:2] == ["13"], "v2 total after 10 more requests")

    # While requests keep coming, the rate since the last draw shows them.
    stop = threading.Event()

    def testers():
        while not stop.is_set():
            envoy.request("/", headers={"cookie": "user=tester"})
            time.sleep(0.02)

    sender = threading.Thread(target=testers)
    sender.start()
    try:
        tmux.wait_for(lambda s: len(row(s, "v2")) > 2 and row(s, "v2")[2] not in ("-", "0.0"), "v2 rate")
    finally:
        stop.set()
        sender.join(timeout=10)
    # Redrawn in place: one heading, on the alternate screen, with nothing scrolled.
    assert tmux.history().count("canary-tagger watch ·") == 1

    tmux.keys("q")
    after = tmux.wait_for(lambda s: "DONE" in s, "exit")
    assert "EXIT=0" in after
    assert "VERSION" not in after, "the watch screen is still shown"
    assert after.split("EXIT=0", 1)[1].split() == ["icanon", "DONE"], after  # canonical mode again


def test_ctrl_c_quits_and_restores_the_terminal(rollout, tmux):
    envoy, _ = rollout
    tmux.start(watch_command(envoy))
    tmux.wait_for(lambda s: "VERSION" in s, "the screen")
    tmux.keys("C-c")
    after = tmux.wait_for(lambda s: "DONE" in s, "exit")
    assert "EXIT=0" in after and "VERSION" not in after
    assert after.split("EXIT=0", 1)[1].split() == ["icanon", "DONE"], after


@pytest.mark.parametrize("no_color", [False, True], ids=["colour", "NO_COLOR"])
def test_colour_only_without_no_color(rollout, tmux, no_color):
    envoy, _ = rollout
    tmux.start(watch_command(envoy), env={"NO_COLOR": "1"} if no_color else None)
    tmux.wait_for(lambda s: "VERSION" in s, "the screen")
    coloured = SGR_COLOUR.search(tmux.pane(escapes=True)) is not None
    assert coloured is not no_color
    tmux.keys("q")
    assert "EXIT=0" in tmux.wait_for(lambda s: "DONE" in s, "exit")


def run_watch(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([str(cli_binary()), "watch", *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60)
    assert "panicked" not in done.stderr, done.stderr
    return done


def test_without_a_terminal_or_a_source_it_is_one_line_and_status_2(rollout):
    envoy, _ = rollout
    for args, words in [
        (["--admin", envoy.admin_url], "not a terminal"),
        (["--admin", f"http://127.0.0.1:{free_port()}"], "cannot read"),
        (["--admin", envoy.admin_url, "--interval", "0s"], "--interval"),
        ([], "give one of --admin URL or --prometheus URL"),
    ]:
        done = run_watch(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stdout == ""
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and words in lines[0], (args, done.stderr)
