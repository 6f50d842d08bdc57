"""A job array's task ids for a study's run numbers: in parts no larger than the cluster allows,
skipping the numbers of retired runs."""

from __future__ import annotations


def array_parts(numbers: list[int], size: int) -> list[tuple[int, list[int]]]:
    """The run numbers in arrays whose task ids stay below ``size`` (SLURM's MaxArraySize),
    each with the offset added to its task id: 0 for the first where it can be."""
    parts: list[tuple[int, list[int]]] = []
    for number in numbers:
        if not parts or number - parts[-1][0] >= size:
            parts.append((0 if number < size else number, []))
        parts[-1][1].append(number)
    return parts


def array_spec(offset: int, numbers: list[int]) -> str:
    """``--array``'s task ids for runs ``numbers``: ``0-3``, or ``0-1,4,6-9`` where ids retired."""
    spans = ranges([number - offset for number in numbers])
    if len(spans) == 1:
        return f"{spans[0][0]}-{spans[0][1]}"
    return ",".join(f"{a}-{b}" if a != b else f"{a}" for a, b in spans)


def array_option(offset: int, numbers: list[int], max_parallel: int | None) -> str:
    """sbatch's ``--array`` for runs ``numbers`` of a part at ``offset``, with the limit of how
    many run at once (``--array=0-9%4``)."""
    limit = f"%{max_parallel}" if max_parallel is not None else ""
    return f"--array={array_spec(offset, numbers)}{limit}"


def offset_option(offset: int) -> list[str]:
    """What a part past the first is submitted with: its offset, task N being run N + it."""
    return [f"--export=ALL,TCW_RUN_OFFSET={offset}"] if offset else []


def contiguous(numbers: list[int]) -> bool:
    """Whether the numbers are 0, 1, 2, … without a gap."""
    return numbers == list(range(len(numbers)))


def no_run_test(numbers: list[int]) -> str:
    """The bash test that ``$run`` is no run's number."""
    if contiguous(numbers):
        return f"(( run >= {len(numbers)} ))"
    spans = " || ".join(
        f"run == {a}" if a == b else f"(run >= {a} && run <= {b})" for a, b in ranges(numbers)
    )
    return f"! (( {spans} ))"


def described(numbers: list[int]) -> str:
    """``0 to 3``, or ``0-1, 4, 6-9``."""
    if contiguous(numbers):
        return f"0 to {len(numbers) - 1}"
    return ", ".join(f"{a}-{b}" if a != b else f"{a}" for a, b in ranges(numbers))


def ranges(numbers: list[int]) -> list[tuple[int, int]]:
    """Ascending numbers as runs of consecutive ones: [0, 1, 2, 5] → [(0, 2), (5, 5)]."""
    found: list[tuple[int, int]] = []
    for number in numbers:
        if found and number == found[-1][1] + 1:
            found[-1] = (found[-1][0], number)
        else:
            found.append((number, number))
    return found
