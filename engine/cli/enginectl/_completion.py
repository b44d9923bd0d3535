"""``completion bash|zsh|fish``: a shell completion script, generated from the parser.

The script is static: it knows every command, subcommand and flag, and the choices of those
that have them (``-o table|json``, ``ls --status``), so completing costs the shell no call to
``enginectl``. It is generated from :func:`build_parser` each time it is printed, so it never
drifts from the commands; load it with ``source <(enginectl completion bash)``.

Each script first finds where on the command line the cursor is: it walks the words before
it, skipping flags and the values of those that take one, following subcommand names
(``config`` then ``set-context``); the *path* it ends on (``config set-context``) picks what
to offer.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

from engine.cli.enginectl._common import EXIT_OK, Subcommands

__all__ = ["SHELLS", "completion_script", "register"]

SHELLS: Final = ("bash", "zsh", "fish")
_PROGRAM: Final = "enginectl"
_FILE_METAVARS: Final = frozenset({"FILE", "PATH", "DIR", "DIRECTORY"})


def register(commands: Subcommands) -> None:
    """Add ``completion``."""
    completion = commands.add_parser(
        "completion",
        help="print a shell completion script",
        description="Print a completion script for bash, zsh or fish: commands, subcommands, "
        "flags and their choices. Load it in the current shell with "
        "'source <(enginectl completion bash)' (zsh: the same with zsh; fish: "
        "'enginectl completion fish | source'), or save it where the shell looks for "
        "completions (~/.local/share/bash-completion/completions/enginectl, a directory of "
        "$fpath as _enginectl, ~/.config/fish/completions/enginectl.fish).",
    )
    completion.add_argument("shell", choices=SHELLS, help="the shell")
    completion.set_defaults(handler=print_completion)


def print_completion(args: argparse.Namespace) -> int:
    """``enginectl completion SHELL``."""
    from engine.cli.enginectl._main import build_parser  # the whole parser, not known here

    sys.stdout.write(completion_script(build_parser(), args.shell))
    return EXIT_OK


# -- what the parser knows --------------------------------------------------------------------


@dataclass
class _Command:
    """One parser of the tree: where it is, and what may follow it."""

    path: str
    """Its subcommand names from the top, space-separated ("" for the program itself)."""
    subcommands: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    valued: dict[str, list[str]] = field(default_factory=dict)
    """The flags that take a value, with their choices (empty: any value)."""
    files: set[str] = field(default_factory=set)
    """The flags whose value is a file."""
    positional_choices: list[str] = field(default_factory=list)


def _commands(parser: argparse.ArgumentParser, path: str = "") -> Iterator[_Command]:
    """Every parser of the tree, the program's first."""
    command = _Command(path)
    children: list[tuple[str, argparse.ArgumentParser]] = []
    for action in parser._actions:  # argparse has no public way to walk its parser
        if action.help == argparse.SUPPRESS:
            continue
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                command.subcommands.append(name)
                children.append((name, child))
            continue
        if not action.option_strings:
            command.positional_choices.extend(str(c) for c in action.choices or ())
            continue
        command.flags.extend(action.option_strings)
        if action.nargs != 0:
            for flag in action.option_strings:
                command.valued[flag] = [str(c) for c in action.choices or ()]
                if str(action.metavar) in _FILE_METAVARS:
                    command.files.add(flag)
    yield command
    for name, child in children:
        yield from _commands(child, f"{path} {name}".strip())


def completion_script(parser: argparse.ArgumentParser, shell: str) -> str:
    """The completion script of ``parser`` for ``shell`` (one of :data:`SHELLS`)."""
    commands = list(_commands(parser))
    if shell == "bash":
        return _bash(commands)
    if shell == "zsh":
        return _zsh(commands)
    if shell == "fish":
        return _fish(commands)
    raise ValueError(f"no completion for {shell!r}: one of {', '.join(SHELLS)}")


# -- bash and zsh: the same walk, in the syntax both read ------------------------------------


def _quoted(words: list[str]) -> str:
    """Words for a double-quoted shell string (none of them needs escaping)."""
    return " ".join(words)


def _sh_walk(commands: list[_Command], words: str, first: str, last: str) -> list[str]:
    """The loop (bash and zsh share its syntax) that leaves in ``at`` the path of the words
    before the cursor and in ``skip`` whether the last of them was a flag awaiting its value."""
    valued = [
        f'                    "{command.path}") case "$word" in {" | ".join(command.valued)})'
        " skip=1 ;; esac ;;"
        for command in commands
        if command.valued
    ]
    moves = [
        f'            "{command.path}|{name}") at="{(command.path + " " + name).strip()}" ;;'
        for command in commands
        for name in command.subcommands
    ]
    return [
        "    local at='' word='' skip=0 i",
        f"    for ((i = {first}; i < {last}; i++)); do",
        f"        word=${{{words}[i]}}",
        "        if ((skip)); then skip=0; continue; fi",
        '        case "$word" in',
        "            --*=*) continue ;;",
        "            -*)",
        '                case "$at" in',
        *valued,
        "                esac",
        "                continue ;;",
        "        esac",
        '        case "$at|$word" in',
        *moves,
        "        esac",
        "    done",
    ]


def _choices_cases(
    commands: list[_Command], indent: str, emit_words: str, emit_files: str
) -> list[str]:
    """``case "$at|$flag"``: the values a flag takes (its choices, or files)."""
    lines = []
    for command in commands:
        for flag, choices in command.valued.items():
            if choices:
                lines.append(
                    f'{indent}"{command.path}|{flag}") {emit_words.format(_quoted(choices))} ;;'
                )
            elif flag in command.files:
                lines.append(f'{indent}"{command.path}|{flag}") {emit_files} ;;')
    return lines


def _bash(commands: list[_Command]) -> str:
    lines = [
        f"# bash completion of {_PROGRAM}; load it with: source <({_PROGRAM} completion bash)",
        f"_{_PROGRAM}() {{",
        # The words as the shell will pass them (COMP_WORDS splits at '=' and ':' as well, and
        # `--address host:port` would look like three words).
        '    local line="${COMP_LINE:0:COMP_POINT}"',
        "    local -a words",
        '    read -ra words <<< "$line"',
        '    if [[ -z $line || $line == *[[:space:]] ]]; then words+=(""); fi',
        '    local cur="${words[${#words[@]}-1]}" flag=""',
        *_sh_walk(commands, "words", "1", "${#words[@]} - 1"),
        "    if ((skip)); then",
        '        flag="${words[${#words[@]}-2]}"',
        "    elif [[ $cur == --*=* ]]; then",
        '        flag="${cur%%=*}" cur="${cur#*=}"',
        "    fi",
        "    if [[ -n $flag ]]; then",
        '        case "$at|$flag" in',
        *_choices_cases(
            commands,
            "            ",
            'COMPREPLY=($(compgen -W "{}" -- "$cur"))',
            'compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur"))',
        ),
        "            *) COMPREPLY=() ;;",
        "        esac",
        "        return 0",
        "    fi",
        '    local options="" commands=""',
        '    case "$at" in',
    ]
    for command in commands:
        lines.append(
            f'        "{command.path}") options="{_quoted(command.flags)}"'
            f' commands="{_quoted(command.subcommands or command.positional_choices)}" ;;'
        )
    lines += [
        "    esac",
        "    if [[ $cur == -* ]]; then",
        '        COMPREPLY=($(compgen -W "$options" -- "$cur"))',
        "    elif [[ -n $commands ]]; then",
        '        COMPREPLY=($(compgen -W "$commands" -- "$cur"))',
        "    else",  # a command's own arguments: files, run ids... files are the likely ones
        "        compopt -o filenames 2>/dev/null",
        '        COMPREPLY=($(compgen -f -- "$cur"))',
        "    fi",
        "}",
        f"complete -F _{_PROGRAM} {_PROGRAM}",
        "",
    ]
    return "\n".join(lines)


def _zsh(commands: list[_Command]) -> str:
    lines = [
        f"#compdef {_PROGRAM}",
        f"# zsh completion of {_PROGRAM}; load it with: source <({_PROGRAM} completion zsh)",
        f"_{_PROGRAM}() {{",
        '    local cur="${words[CURRENT]}" flag=""',
        *_sh_walk(commands, "words", "2", "CURRENT"),
        "    if ((skip)); then",
        '        flag="${words[CURRENT-1]}"',
        "    elif [[ $cur == --*=* ]]; then",
        '        flag="${cur%%=*}"',
        '        compset -P "*="',
        "    fi",
        "    if [[ -n $flag ]]; then",
        '        case "$at|$flag" in',
        *_choices_cases(commands, "            ", "compadd -- {}", "_files"),
        "        esac",
        "        return",
        "    fi",
        "    local -a options commands",
        '    case "$at" in',
    ]
    for command in commands:
        lines.append(
            f'        "{command.path}") options=({_quoted(command.flags)});'
            f" commands=({_quoted(command.subcommands or command.positional_choices)}) ;;"
        )
    lines += [
        "    esac",
        "    if [[ $cur == -* ]]; then",
        "        compadd -- $options",
        "    elif (( ${#commands} )); then",
        "        compadd -- $commands",
        "    else",
        "        _files",
        "    fi",
        "}",
        # Autoloaded from $fpath, the file is the function's body; sourced, it registers it.
        "if [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then",
        f'    _{_PROGRAM} "$@"',
        "else",
        f"    compdef _{_PROGRAM} {_PROGRAM}",
        "fi",
        "",
    ]
    return "\n".join(lines)


# -- fish ---------------------------------------------------------------------------------------


def _fish(commands: list[_Command]) -> str:
    valued = sorted(f"'{c.path}|{flag}'" for c in commands for flag in c.valued)
    lines = [
        f"# fish completion of {_PROGRAM}; load it with: {_PROGRAM} completion fish | source",
        f"function __{_PROGRAM}_path",
        "    set -l at ''",
        "    set -l skip 0",
        "    for word in (commandline -opc)[2..-1]",
        "        if test $skip = 1",
        "            set skip 0",
        "            continue",
        "        end",
        "        if string match -q -- '--*=*' $word",
        "            continue",
        "        else if string match -q -- '-*' $word",
        '            switch "$at|$word"',
        f"                case {' '.join(valued)}",
        "                    set skip 1",
        "            end",
        "            continue",
        "        end",
        '        switch "$at|$word"',
    ]
    for command in commands:
        for name in command.subcommands:
            lines += [
                f"            case '{command.path}|{name}'",
                f"                set at '{(command.path + ' ' + name).strip()}'",
            ]
    lines += [
        "        end",
        "    end",
        '    echo "$at"',
        "end",
        f"function __{_PROGRAM}_at",
        f"    set -l at (__{_PROGRAM}_path)",
        '    test "$at" = "$argv[1]"',
        "end",
        f"complete -c {_PROGRAM} -e",
        f"complete -c {_PROGRAM} -f",
    ]
    for command in commands:
        condition = f"-n \"__{_PROGRAM}_at '{command.path}'\""
        offered = command.subcommands or command.positional_choices
        if offered:
            lines.append(f"complete -c {_PROGRAM} {condition} -a '{_quoted(offered)}'")
        elif command.path:
            lines.append(f"complete -c {_PROGRAM} {condition} -F")
        for flag in command.flags:
            spec = f"-l {flag[2:]}" if flag.startswith("--") else f"-s {flag[1:]}"
            if flag in command.valued:
                choices = command.valued[flag]
                if choices:
                    spec += f" -x -a '{_quoted(choices)}'"
                elif flag in command.files:
                    spec += " -r -F"
                else:
                    spec += " -x"
            lines.append(f"complete -c {_PROGRAM} {condition} {spec}")
    lines.append("")
    return "\n".join(lines)
