"""``sqlml shell``: an interactive SQL shell that also speaks the Redshift ML statements.

In a terminal it reads with prompt_toolkit: Enter runs the text once it ends a statement (a ``;``
outside strings, comments and parentheses, as ``sqlml.redshift.parser.is_complete`` decides) and
starts a new line otherwise, so one history entry holds a whole multi-line statement. History
persists in ``~/.sqlml_history`` (or the file ``$SQLML_HISTORY`` names). When standard input is not
a terminal (``echo "SHOW MODEL ALL;" | sqlml shell db``) it reads plain lines, runs each statement
as it completes, prints no prompts, and exits with 1 if any statement failed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

from sqlml.cli.console import Console
from sqlml.errors import did_you_mean
from sqlml.redshift.parser import is_complete

PROMPT = "sqlml> "
CONTINUATION = "   ...> "
HISTORY_ENV = "SQLML_HISTORY"

HELP = """\
Statements end with ';' and may span lines: Enter runs a complete statement, and starts a new
line otherwise. Plain DuckDB SQL and the Redshift ML statements both work:
  CREATE MODEL name FROM table TARGET col FUNCTION fn [MODEL_TYPE ...] [SETTINGS (...)];
  SHOW MODEL name;   SHOW MODEL ALL;   DROP MODEL [IF EXISTS] name;   EXPLAIN_MODEL(name);
Dot commands (alone on a line):
  .help             this text
  .models           the models in this database (SHOW MODEL ALL)
  .tables           the tables (SHOW TABLES)
  .quit, .exit      leave the shell (Ctrl-D too)
Keys: Up/Down browse the history (kept in {history}), Ctrl-R searches it, Ctrl-C clears the
current input, Ctrl-D on an empty line exits. Training shows a progress bar unless the shell
was started with --quiet."""

DOT = {".help": None, ".models": "SHOW MODEL ALL;", ".tables": "SHOW TABLES;",
       ".quit": None, ".exit": None}


def history_path() -> Path:
    return Path(os.environ.get(HISTORY_ENV) or Path.home() / ".sqlml_history").expanduser()


class Shell:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.failed = False

    def dot(self, command: str) -> bool:
        """Run a dot command; False when it asks to leave."""
        word = command.split()[0].lower()
        if word in (".quit", ".exit"):
            return False
        if word == ".help":
            self.console.out(HELP.format(history=history_path()))
        elif (sql := DOT.get(word)) is not None:
            self.failed |= not self.console.run(sql)
        else:
            self.console.err(f"Error: unknown command {word!r}.{did_you_mean(word, DOT)} "
                             f"Type .help for the list.")
            self.failed = True
        return True

    def submit(self, text: str) -> bool:
        """Run what the user entered; False when it asks to leave."""
        stripped = text.strip()
        if not stripped:
            return True
        if stripped.startswith("."):
            return self.dot(stripped)
        try:
            ok = self.console.run(text)
        except KeyboardInterrupt:
            self.console.err("Interrupted.")
            ok = False
        self.failed |= not ok
        return True

    # -- standard input that is not a terminal --------------------------------------------------
    def run_lines(self, lines: Iterable[str]) -> int:
        buffer = ""
        for line in lines:
            if not buffer.strip() and line.strip().startswith("."):
                if not self.dot(line.strip()):
                    return int(self.failed)
                continue
            buffer += line if line.endswith("\n") else line + "\n"
            if is_complete(buffer):
                self.submit(buffer)
                buffer = ""
        if buffer.strip():
            self.submit(buffer)    # a last statement without its ';' still runs
        return int(self.failed)

    # -- a terminal ----------------------------------------------------------------------------
    def interactive(self, banner: str) -> int:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
        from prompt_toolkit.history import FileHistory, History, InMemoryHistory
        from prompt_toolkit.key_binding import KeyBindings

        path = history_path()
        history: History
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(exist_ok=True)
            history = FileHistory(str(path))
        except OSError as exc:
            self.console.err(f"Notice: history is not saved: cannot write {path} ({exc}). Set "
                             f"{HISTORY_ENV} to a writable file.")
            history = InMemoryHistory()

        keys = KeyBindings()

        @keys.add("enter")
        def _(event):
            buf = event.current_buffer
            text = buf.text.strip()
            if not text or text.startswith(".") or is_complete(buf.text):
                buf.validate_and_handle()
            else:
                buf.insert_text("\n")

        session: PromptSession[str] = PromptSession(
            history=history, multiline=True, key_bindings=keys,
            auto_suggest=AutoSuggestFromHistory(), enable_history_search=False,
            prompt_continuation=lambda width, line_number, soft_wrap: CONTINUATION.rjust(width))
        self.console.out(banner)
        while True:
            try:
                text = session.prompt(PROMPT)
            except KeyboardInterrupt:
                continue
            except EOFError:
                break
            if not self.submit(text):
                break
        return 0


def run(console: Console, database: str, stdin=None) -> int:
    """The shell on ``console``; the exit code."""
    from sqlml import __version__

    stdin = stdin if stdin is not None else sys.stdin
    shell = Shell(console)
    if _terminal(stdin) and _terminal(sys.stdout):
        return shell.interactive(
            f"sqlml {__version__} on {database}. End statements with ';'. Type .help for help, "
            f".quit or Ctrl-D to leave.")
    if hasattr(stdin, "reconfigure"):
        # Bytes that are not UTF-8 reach Console.run, which names where they are, instead of
        # ending the shell with a UnicodeDecodeError.
        stdin.reconfigure(errors="surrogateescape")
    return shell.run_lines(stdin)


def _terminal(stream) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:      # a closed stream
        return False
