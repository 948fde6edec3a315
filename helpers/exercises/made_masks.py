"""The checks of notebook 3's exercises: MADE's connectivity numbers and masks."""

import re

import torch

from ..models.masks import connectivity_numbers, reachability
from .harness import ExerciseFailed, isolated, passed, prepare

_UNLIKELY_SEED = 294158  # torch's global seed during a call: a learner's function that reseeds it changes it


def check_connectivity_numbers(fn):
    """Check connectivity_numbers(ordering, hidden_sizes, generator) -> [m0, m1, ..., mL]."""
    name = "connectivity_numbers"
    exercise, call = prepare(name, fn, explain=_randint_bounds)
    with isolated():
        ordering, hidden = torch.tensor([2, 0, 3, 1]), (7, 5)
        torch.default_generator.manual_seed(_UNLIKELY_SEED)
        numbers = _numbers(name, call(ordering, hidden, torch.Generator().manual_seed(0)), ordering, hidden)
        if torch.initial_seed() != _UNLIKELY_SEED:
            raise ExerciseFailed(
                f"{name} reseeds torch's global generator (torch.manual_seed({torch.initial_seed()}) or the like): "
                f"each MADE built would reset the notebook's random stream, which also initializes the weights, and "
                f"draw the same numbers whatever its seed. Remove the seeding, and draw with the generator you are "
                f"given (pass it to torch.randint)"
            )
        expected_m0 = ordering.argsort() + 1
        if not torch.equal(numbers[0], expected_m0):
            mistake = (
                " (that is ordering + 1, the dimension at each position)"
                if torch.equal(numbers[0], ordering + 1)
                else ""
            )
            raise ExerciseFailed(
                f"{name}: m0[i] must be the position (1..D) of data dimension i in the ordering: for "
                f"ordering {ordering.tolist()}, m0 = {expected_m0.tolist()}, got "
                f"{numbers[0].tolist()}{mistake}: m0 is the inverse permutation of the ordering, plus one"
            )
        _draws_from_the_generator(name, call)
        D, hidden, draws = 5, (6, 6, 6), 400
        g = torch.Generator().manual_seed(1)
        seen = torch.zeros(D + 1, dtype=torch.bool)  # numbers of hidden layer 1 ever drawn
        repeated = 0  # draws whose deeper hidden layers repeat layer 1's numbers
        for _ in range(draws):
            ordering = torch.randperm(D, generator=g)
            numbers = _numbers(name, call(ordering, hidden, g), ordering, hidden)
            _numbers_in_range(name, numbers, D)
            seen[numbers[1]] = True
            repeated += all(torch.equal(numbers[1], m) for m in numbers[2:])
        if repeated == draws:
            raise ExerciseFailed(
                f"{name}: in all {draws} draws with hidden sizes {list(hidden)}, the deeper hidden layers repeat "
                f"hidden layer 1's numbers: each hidden layer has numbers of its own, drawn from the generator in "
                f"turn (in [min of the layer just below, D − 1]); reused numbers give other masks than MADE's"
            )
        missing = [m for m in range(1, D) if not seen[m]]
        if missing:
            raise ExerciseFailed(
                f"{name}: over {draws} draws with D = {D}, no unit of hidden layer 1 was ever numbered "
                f"{missing}: every number in [min(m0), D − 1] = [1, {D - 1}] must be possible "
                f"(torch.randint(low, high) draws from low to high − 1)"
            )
    passed(
        exercise,
        fn,
        f"m0 are the positions in the ordering, the hidden numbers come from the generator given "
        f"(alike for a seed, different across seeds), and in {draws} draws every hidden number lies "
        f"in [min of the layer before, D − 1], all of them drawn",
    )


def _randint_bounds(err, args):
    """What torch.randint's error for an empty range means here: the low bound taken from the wrong end."""
    found = re.search(r"expects 'from' to be less than 'to', but got from=(-?\d+) >= to=(-?\d+)", str(err))
    if found is None:
        return None
    low, high = int(found[1]), int(found[2])
    D = len(args[0])
    maximum = (
        f" (with low = {low} = D, the largest number of the inputs, nothing is left)" if low == D else ""
    )
    return (
        f"torch.randint(low, high) got low = {low} ≥ high = {high}, an empty range{maximum}: hidden layer l's "
        f"numbers lie in [min(m_(l−1)), D − 1], so low is the smallest number of the layer before (its minimum, "
        f"not its maximum) and high = D, which randint excludes"
    )


def _draws_from_the_generator(name, call):
    """The hidden numbers must come from the generator given: it advances, fixes them, and other seeds change them.
    A MADE numbers all its masks with one generator seeded by its seed."""
    ordering, hidden = torch.tensor([3, 1, 0, 2, 4]), (6, 6, 6)
    g = torch.Generator().manual_seed(7)
    before = g.get_state()
    first = _numbers(name, call(ordering, hidden, g), ordering, hidden)
    second = call(ordering, hidden, torch.Generator().manual_seed(7))
    alike = all(torch.equal(a, b) for a, b in zip(first, second))
    consequence = (
        "MADE(seed=1) and MADE(seed=2) would get the same masks, and so would all masks of a model with "
        "num_masks > 1"
    )
    if torch.equal(g.get_state(), before):
        raise ExerciseFailed(
            f"{name} draws nothing from the generator it is given (its state is unchanged after the call): "
            + (
                f"{consequence}"
                if alike
                else "a MADE's seed would not fix its masks, which would follow whatever "
                "the notebook drew before from torch's global generator"
            )
            + ". Draw with it (torch.randint takes it as generator=), not with torch's global "
            "generator nor a new torch.Generator()"
        )
    if not alike:
        raise ExerciseFailed(
            f"{name}: two generators seeded alike gave different numbers: draw only with the "
            f"generator you are given, so that a MADE's "
            f"seed fixes its masks"
        )
    other = call(ordering, hidden, torch.Generator().manual_seed(8))
    if all(torch.equal(a, b) for a, b in zip(first, other)):
        raise ExerciseFailed(
            f"{name}: generators seeded differently (7 and 8) gave the same numbers: {consequence}. "
            f"Draw with the generator as it is given, without reseeding it (generator.manual_seed) "
            f"or replacing it"
        )


def _numbers(name, numbers, ordering, hidden):
    """numbers, checked to be L + 1 one-dimensional integer tensors of lengths D, *hidden."""
    lengths = [len(ordering), *hidden]
    if (
        not isinstance(numbers, (list, tuple))
        or len(numbers) != len(lengths)
        or not all(torch.is_tensor(m) and m.dim() == 1 and m.dtype == torch.long for m in numbers)
        or [len(m) for m in numbers] != lengths
    ):
        got = (
            [f"{m.dtype} {tuple(m.shape)}" if torch.is_tensor(m) else type(m).__name__ for m in numbers]
            if isinstance(numbers, (list, tuple))
            else type(numbers).__name__
        )
        raise ExerciseFailed(
            f"{name} must return [m0, m1, ..., m{len(hidden)}]: {len(lengths)} one-dimensional long "
            f"tensors (torch.long, what the model stores) of lengths {lengths} (D, then each hidden "
            f"layer's width), got {got}"
        )
    return numbers


def _numbers_in_range(name, numbers, D):
    for l in range(1, len(numbers)):
        low = int(numbers[l - 1].min())
        for k, m in enumerate(numbers[l].tolist()):
            if m < low:
                raise ExerciseFailed(
                    f"{name}: hidden unit {k} of layer {l} is numbered {m}, below the smallest number "
                    f"{low} of layer {l - 1}: it gets no input (its mask row is all zeros). Draw "
                    f"layer {l}'s numbers in [min(m_{l - 1}), D − 1]"
                )
            if m > D - 1:
                raise ExerciseFailed(
                    f"{name}: hidden unit {k} of layer {l} is numbered {m}, with D = {D}: it can feed "
                    f"no output (the output at position r reads only units numbered below r ≤ D). "
                    f"Numbers stop at D − 1 = {D - 1}: draw in [min(m_{l - 1}), D − 1]"
                )


def check_masks_from_numbers(fn):
    """Check masks_from_numbers(numbers) -> the L + 1 masks (out, in) of connectivity numbers [m0, ..., mL]."""
    name = "masks_from_numbers"
    exercise, call = prepare(name, fn)
    with isolated():
        g = torch.Generator().manual_seed(0)
        cases = [
            connectivity_numbers(torch.tensor([2, 0, 3, 1]), (6, 6), g),
            connectivity_numbers(torch.randperm(5, generator=g), (8,), g),
            connectivity_numbers(torch.tensor([1, 2, 0]), (), g),
        ]  # no hidden layer: the direct connections
        for numbers in cases:
            given = [m.clone() for m in numbers]
            masks = call(given)
            _unchanged(name, given, numbers)
            masks = _masks(name, masks, numbers)
            for l, expected in enumerate(exercise.reference(numbers)):
                _same_mask(name, l, masks, expected.bool(), numbers)
    passed(
        exercise,
        fn,
        "every mask keeps exactly the connections m_out ≥ m_in (hidden) and m0 > m_L (outputs), "
        "also without hidden layers, so output r reads only inputs before r in the ordering",
    )


def _unchanged(name, given, numbers):
    """The numbers the learner's function was given, which must be as they were: a MADE passes its own."""
    changed = [l for l, m in enumerate(numbers) if l >= len(given) or not torch.equal(given[l], m)]
    if changed or len(given) != len(numbers):
        l = changed[0] if changed else len(numbers)
        now = given[l].tolist() if l < len(given) and torch.is_tensor(given[l]) else "gone"
        raise ExerciseFailed(
            f"{name} changed the numbers it was given: numbers[{l}] was "
            f"{numbers[l].tolist() if l < len(numbers) else 'absent'}, is {now} after the call. An "
            f"in-place operation (numbers[{l}] -= 1, +=, or an assignment into numbers or "
            f"numbers[{l}][...]) edits the model's own numbers, and masks computed after it use the "
            f"edited ones: compute with new tensors (numbers[{l}] - 1) instead"
        )


def _masks(name, masks, numbers):
    """masks, checked to be L + 1 tensors (out, in) of zeros and ones, as bool."""
    shapes = [(len(m_out), len(m_in)) for m_in, m_out in zip(numbers, [*numbers[1:], numbers[0]])]
    if (
        not isinstance(masks, (list, tuple))
        or len(masks) != len(shapes)
        or not all(torch.is_tensor(m) and tuple(m.shape) == s for m, s in zip(masks, shapes))
    ):
        got = (
            [tuple(m.shape) if torch.is_tensor(m) else type(m).__name__ for m in masks]
            if isinstance(masks, (list, tuple))
            else type(masks).__name__
        )
        raise ExerciseFailed(
            f"{name} must return L + 1 = {len(shapes)} masks of shapes {shapes} (out, in: one row per "
            f"unit of the layer above) for numbers of lengths {[len(m) for m in numbers]}, got {got}"
        )
    for l, m in enumerate(masks):
        if not ((m == 0) | (m == 1)).all():
            raise ExerciseFailed(
                f"{name}: mask {l} must hold only 0 and 1 (keep a weight or not), got values "
                f"{m.unique().tolist()[:6]}"
            )
    return [m.bool() for m in masks]


def _same_mask(name, l, masks, expected, numbers):
    """Raise at the first weight that mask l keeps or drops wrongly, naming the mask, the units, the rule and,
    where it is one, the mistake; then what the outputs can see as it is."""
    got, L = masks[l], len(numbers) - 1
    diff = got != expected
    if not diff.any():
        return
    k, j = diff.nonzero()[0].tolist()
    m_in, m_out = numbers[l], (numbers[l + 1] if l < L else numbers[0])
    layer = lambda l: "the inputs" if l == 0 else f"hidden layer {l}"
    what = f"mask {l} ({layer(l)} → " + (f"{layer(l + 1)})" if l < L else "the outputs: the output mask)")
    below = f"input {j}" if l == 0 else f"unit {j} of hidden layer {l}"
    above = f"output {k}" if l == L else f"unit {k} of hidden layer {l + 1}"
    rule = (
        f"m0[i] > m{L}[k], strictly: output i reads only units numbered below its position"
        if l == L
        else f"m{l + 1}[k] ≥ m{l}[j]: a unit reads the units below numbered up to its own number"
    )
    mistake = _mask_mistake(got, l, numbers)
    raise ExerciseFailed(
        f"{name}: {what} {'keeps' if got[k, j] else 'drops'} the weight from {below} (number "
        f"{int(m_in[j])}) to {above} (number {int(m_out[k])}); it should keep exactly the weights "
        f"with {rule}{'. ' + mistake if mistake else ''}{_what_outputs_see(masks, numbers)}"
    )


def _mask_mistake(got, l, numbers):
    """The known mistake that mask l of the learner is, if it is one."""
    L = len(numbers) - 1
    m_in, m_out = numbers[l], (numbers[l + 1] if l < L else numbers[0])
    strict = l == L
    rule = ">" if strict else "≥"
    reversed_ = (
        f"It compares the other way round (m_in {rule} m_out): row k, a unit of the layer above, keeps the "
        f"weight from column j, a unit below, when m_out[k] {rule} m_in[j]: broadcast m_out as a column "
        f"against m_in as a row"
    )
    mistakes = [(m_in[None, :] >= m_out[:, None], reversed_), (m_in[None, :] > m_out[:, None], reversed_)]
    if l < L:
        mistakes.append(
            (
                m_out[:, None] > m_in[None, :],
                "It is strict (>), but a hidden unit numbered m may read every unit numbered up to m "
                "(≥): only the output mask is strict",
            )
        )
    else:
        mistakes.append(
            (
                m_out[:, None] >= m_in[None, :],
                "It is not strict (≥): output i would read hidden units numbered m0[i], which see input i "
                "itself; the output mask keeps m0[i] > m_L[k] (>, not ≥)",
            )
        )
        mistakes += [
            (
                m_out[:, None] > numbers[other][None, :],
                f"It compares m0 with the numbers of {'the inputs' if other == 0 else f'hidden layer {other}'} "
                f"(numbers[{other}]), but the output mask reads the last hidden layer: compare with numbers[-1]",
            )
            for other in range(L)
            if len(numbers[other]) == len(m_in)
        ]
    return next((explanation for mask, explanation in mistakes if torch.equal(got, mask)), None)


def _what_outputs_see(masks, numbers):
    """What the learner's masks let the outputs see (the product of the masks), when it breaks the autoregressive
    property."""
    m0 = numbers[0]
    bad = reachability(masks) & (m0[None, :] >= m0[:, None])
    if not bad.any():
        return ""
    i, j = bad.nonzero()[0].tolist()
    if i == j:
        return f". As it is, output {i} can see input {i}, its own dimension: p(x_{i} | ...) would read x_{i}"
    return (
        f". As it is, output {i} (position {int(m0[i])} in the ordering) can see input {j} (position "
        f"{int(m0[j])}), which does not come before it: p(x_{i} | ...) would read x_{j}"
    )
