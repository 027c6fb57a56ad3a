"""Self cost per (object, file, function) from a callgrind output file.

instructions.py needs to know where a server's instructions go (our code,
gRPC, protobuf, Abseil, libc) without callgrind_annotate, whose output is
made for reading, not parsing. The format is documented in valgrind's
"Callgrind Format Specification"; the parts that matter here:

* `ob=`, `fl=`, `fn=` name the object, file and function of the cost lines
  that follow; `fi=`/`fe=` switch the file for inlined code inside the
  same function (callgrind writes `fe=` back before the next function, so
  the last of fl/fi/fe is the current file).
* Names may be compressed: `(id) name` defines an id, `(id)` alone reuses
  it. Objects (ob, cob), files (fl, fi, fe, cfi, cfl, jfi) and functions
  (fn, cfn, jfn) each have their own id space.
* `cob=`/`cfi=`/`cfn=` then `calls=N POS` describe a call; the cost line
  right after `calls=` is the call's inclusive cost, already counted as
  self cost where the callee's own lines are, so it is skipped.
* A cost line is positions (as many as `positions:` names; numbers, hex,
  `+N`/`-N` relative, `*` same) then one number per event of `events:`,
  missing trailing ones being 0.
* `totals:` (at the end) is the sum of all cost lines: a check that
  nothing was missed or counted twice.

The calls' inclusive costs are kept apart (`call_costs`), so that a
function's inclusive cost (`inclusive`) is its self cost plus its calls'.
A function's calls to itself are left out, as they are inside its own
cost already; a cycle through other functions is counted at each level,
as callgrind_annotate counts it.
"""

import dataclasses

OBJECT_KEYS = ("ob", "cob")
FILE_KEYS = ("fl", "fi", "fe", "cfi", "cfl", "jfi")
FUNCTION_KEYS = ("fn", "cfn", "jfn")


@dataclasses.dataclass
class Profile:
    """One callgrind file's costs of one event."""
    event: str
    # (object, file, function) -> self cost.
    self_costs: dict
    # The file's `totals:` (or `summary:`) for the event; None if absent.
    totals: int | None
    # (object, file, function) of a caller -> the inclusive cost of its
    # calls to other functions.
    call_costs: dict = dataclasses.field(default_factory=dict)

    def total(self):
        return sum(self.self_costs.values())

    def inclusive(self, function):
        """`function`'s inclusive cost: its self cost and its calls', over
        every object and file the name appears in."""
        return sum(cost for costs in (self.self_costs, self.call_costs)
                   for (_, _, name), cost in costs.items() if name == function)

    def by_object(self):
        out = {}
        for (obj, _, _), cost in self.self_costs.items():
            out[obj] = out.get(obj, 0) + cost
        return out


class FormatError(ValueError):
    pass


def _is_cost_line(line):
    return line[0].isdigit() or line[0] in "+-*"


class _Names:
    """The three id spaces of name compression."""

    def __init__(self):
        self.tables = {"ob": {}, "fl": {}, "fn": {}}

    def resolve(self, space, text, line_number):
        text = text.strip()
        if not text.startswith("("):
            return text
        close = text.find(")")
        if close < 0:
            raise FormatError(f"line {line_number}: bad name {text!r}")
        name_id = text[1:close]
        rest = text[close + 1:].strip()
        table = self.tables[space]
        if rest:
            table[name_id] = rest
            return rest
        if name_id not in table:
            raise FormatError(f"line {line_number}: name id ({name_id}) "
                              "used before it was defined")
        return table[name_id]


def _event_numbers(line, line_number):
    try:
        return [int(word) for word in line.split()]
    except ValueError:
        raise FormatError(f"line {line_number}: not numbers: {line!r}")


def parse(lines, event="Ir"):
    """Reads callgrind output `lines` (an iterable of str) into a Profile of
    the self costs of `event`."""
    names = _Names()
    positions = 1  # "positions: line" is the default.
    event_index = None
    obj = file = function = callee = "???"
    skip_next_cost = False
    self_costs = {}
    call_costs = {}
    totals = summary = None
    for line_number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if _is_cost_line(line):
            if event_index is None:
                raise FormatError(f"line {line_number}: costs before 'events:'")
            words = line.split()
            costs = words[positions:]
            if event_index < len(costs):
                try:
                    cost = int(costs[event_index])
                except ValueError:
                    raise FormatError(f"line {line_number}: bad cost {line!r}")
                key = (obj, file, function)
                if not skip_next_cost:
                    self_costs[key] = self_costs.get(key, 0) + cost
                elif callee != function:  # The inclusive cost of the call above.
                    call_costs[key] = call_costs.get(key, 0) + cost
            skip_next_cost = False
            continue
        key, sep, value = line.partition("=")
        if sep and key in OBJECT_KEYS + FILE_KEYS + FUNCTION_KEYS:
            space = ("ob" if key in OBJECT_KEYS else
                     "fl" if key in FILE_KEYS else "fn")
            name = names.resolve(space, value, line_number)
            if key == "ob":
                obj = name
            elif key in ("fl", "fi", "fe"):
                file = name
            elif key == "fn":
                function = name
            elif key == "cfn":
                callee = name
            # cob/cfi/cfl/cfn/jfi/jfn only name a call's or jump's target.
            continue
        if sep and key == "calls":
            skip_next_cost = True
            continue
        if sep and key in ("jump", "jcnd"):
            continue  # A jump line carries its own positions, no cost.
        head, colon, rest = line.partition(":")
        if not colon:
            continue  # Other specification lines (rec=, frfn=, ...).
        if head == "positions":
            positions = len(rest.split())
        elif head == "events":
            events = rest.split()
            if event not in events:
                raise FormatError(f"event {event} not among {events}")
            event_index = events.index(event)
        elif head in ("totals", "summary"):
            if event_index is None:
                raise FormatError(f"line {line_number}: {head} before events")
            numbers = _event_numbers(rest, line_number)
            value = numbers[event_index] if event_index < len(numbers) else 0
            if head == "totals":
                totals = value if totals is None else totals + value
            else:
                summary = value if summary is None else summary + value
    if event_index is None:
        raise FormatError("no 'events:' line: not a callgrind file")
    return Profile(event, self_costs, totals if totals is not None else summary,
                   call_costs)


def parse_file(path, event="Ir"):
    with open(path, encoding="utf-8", errors="replace") as f:
        return parse(f, event)
