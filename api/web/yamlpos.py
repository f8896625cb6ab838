"""Where in a YAML text a dotted field path (``stages.2.phrasings``) is: its 1-based line.

Script validation names fields by dotted path; the editor shows the line beside it so a person
finds the field in a long script. The text is read with the script loader's limits (depth, aliases).
"""

from __future__ import annotations

import yaml

from analyzer.scripts import compose_yaml, load_yaml


def field_line(text: str, path: str) -> int | None:
    """The line of the deepest node on ``path`` that exists (the parent of a missing field)."""
    try:
        node = compose_yaml(text)
    except yaml.YAMLError:
        return None
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in [p for p in path.split(".") if p != ""]:
        if isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == part), None)
            if found is None:
                return line
            line = found[0].start_mark.line + 1
            node = found[1]
        elif isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
            node = node.value[int(part)]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def syntax_error_line(text: str) -> int | None:
    """The line of a YAML syntax error, None when the text parses."""
    try:
        load_yaml(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        return mark.line + 1 if mark else None
    except yaml.YAMLError:
        return None
    return None
