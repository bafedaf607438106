"""Enums, namedtuples, deque, defaultdict, Counter, OrderedDict, datetime/timedelta and
partly consumed iterators (list, zip, enumerate, map, reversed, filter, dict items, range,
set) live across pauses continue where they were."""

import collections
import datetime
import enum
from decimal import Decimal

from durable import PauseForEventException

TRACE = []
ARGS = ()


class Color(enum.Enum):
    RED = 1
    BLUE = 2


class Perm(enum.Flag):
    R = 4
    W = 2
    X = 1


Pair = collections.namedtuple("Pair", "left right")


async def main():
    color, perm = Color.BLUE, Perm.R | Perm.W
    pair = Pair(1, [2])
    dq = collections.deque([1, 2, 3], maxlen=4)
    groups = collections.defaultdict(list)
    counts = collections.Counter("abracadabra")
    ordered = collections.OrderedDict([("z", 1), ("a", 2)])
    when = datetime.datetime(2024, 2, 29, 12, 30, tzinfo=datetime.UTC)
    delta = datetime.timedelta(days=1, seconds=5)
    money = Decimal("10.05")
    it_list = iter([10, 20, 30, 40])
    it_zip = zip("abc", [1, 2, 3], strict=False)
    it_enum = enumerate("xyz", start=5)
    it_map = map(str.upper, ["p", "q", "r"])
    it_rev = reversed([1, 2, 3])
    it_filter = filter(None, [0, 7, 0, 8])
    it_items = iter({"k1": 1, "k2": 2}.items())
    it_range = iter(range(0, 100, 7))
    first = (next(it_list), next(it_zip), next(it_enum), next(it_map), next(it_rev))
    first += (next(it_filter), next(it_items), next(it_range))
    raise PauseForEventException("first")
    TRACE.append(("first", first))
    dq.append(4)
    dq.append(5)
    groups["odd"].append(1)
    counts.update("aa")
    ordered.move_to_end("z")
    raise PauseForEventException("second")
    rest = (list(it_list), list(it_zip), list(it_enum), list(it_map), list(it_rev))
    rest += (list(it_filter), list(it_items), next(it_range), next(it_range))
    TRACE.append(("rest", rest))
    TRACE.append((color.name, perm.value, color is Color.BLUE, Perm.W in perm, pair))
    TRACE.append((list(dq), dict(groups), counts.most_common(2)))
    TRACE.append((list(ordered), when + delta, (when + delta).isoformat(), money * 3))
    return color.name, perm.value, pair.right, groups["even"], dq.maxlen, str(money)
