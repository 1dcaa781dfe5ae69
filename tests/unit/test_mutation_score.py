"""scripts/mutation_score.py's rule for text-only mutants (the ones the logic score leaves out)."""
import importlib.util
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "scripts" / "mutation_score.py"
_spec = importlib.util.spec_from_file_location("mutation_score", _PATH)
score = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(score)

RAISE = 'def f(v):\n    raise InvalidInput("dst", f"port must be a number, got {v!r}")\n'


URI = 'def f(p):\n    return f"tcp://{p}"\n'


@pytest.mark.parametrize("original, mutant, text_only", [
    (RAISE, RAISE.replace('f"port must be a number, got {v!r}"', "None"), True),     # the reason gone
    (RAISE, RAISE.replace("port must", "XXport must"), True),                        # its words
    (RAISE, RAISE.replace("port must be a number", "PORT MUST BE A NUMBER"), True),
    (RAISE, RAISE.replace('"dst"', '"XXdstXX"'), False),                             # the field: logic
    (RAISE, RAISE.replace("{v!r}", "{None!r}"), False),                              # code in {...}
    (RAISE, RAISE.replace(', f"port must be a number, got {v!r}"', ", "), False),    # argument dropped
    (URI, URI.replace('f"tcp://{p}"', "None"), False),                               # a URI, not prose
])
def test_a_mutant_is_text_only_when_it_changes_only_prose(original, mutant, text_only):
    assert score.text_only(original, mutant) is text_only


def test_adjacent_literals_are_one_and_prose_is_found_outside_the_fields():
    code = 'x = ("a b" "c")\ny = f"{a} {b}"\nz = f"{a}-{b}"\n'
    found = score.literals(code)
    assert [(code[s:e], prose) for s, e, prose, _ in found] == [
        ('"a b" "c"', True), ('f"{a} {b}"', True), ('f"{a}-{b}"', False)]


def test_module_names_of_functions_and_methods():
    assert score.module_of("ferry.protocol.flags.x_build_migration_flags__mutmut_3") == "ferry.protocol.flags"
    assert score.module_of("ferry.agent.schedule.xǁScheduleRunnerǁstart__mutmut_1") == "ferry.agent.schedule"
