"""The exercise checks (helpers/exercises.py): each passes on the package's own function (saying it was the
package's) and on correct answers written differently, and fails, with the intended message, on known-wrong
solutions; a check leaves every random state as it was; bad input gets a message naming the exercise and its
signature. (The exercise notebooks themselves: tests/test_generate.py.)"""

import random
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import exercises
from helpers.exercises import EXERCISES, ExerciseFailed
from helpers.models import DiscretizedLogisticMixture, Histogram
from helpers.models.masks import connectivity_numbers, masks_from_numbers
from helpers.models.sampling import draw_categories
from helpers.training import BatchLoader


def check(name):
    return getattr(exercises, f"check_{name}")


# --- known-wrong solutions, each with the message it must get ---------------------------------------------------


def histogram_over_the_batch(logits, x):
    return logits[x].log_softmax(0)  # softmax over the examples, not the categories


def histogram_unnormalized(logits, x):
    return logits[x]


def histogram_naive(logits, x):
    return torch.log(torch.exp(logits[x]) / torch.exp(logits).sum())


def histogram_probabilities(logits, x):
    return torch.softmax(logits, 0)[x]  # p(x), not log p(x)


def histogram_negative_log_likelihood(logits, x):
    return -torch.log_softmax(logits, 0)[x]


def histogram_in_bits(logits, x):
    return torch.log2(torch.softmax(logits, 0))[x]


def histogram_in_reverse(logits, x):
    return logits.log_softmax(0).flip(0)[x]  # normalized, but each x gets another category's probability


def histogram_log_softmax_of_x(logits, x):
    return F.log_softmax(x, 0)  # of the categories: torch has no log_softmax for long tensors


def histogram_with_its_parameters_swapped(x, logits):
    return logits.log_softmax(0)[x]


def histogram_with_a_detached_normalizer(logits, x):
    return logits[x] - torch.logsumexp(logits, 0).detach()  # right values, half the gradient


def a_training_loop(
    model,
    batches,
    held_out,
    epochs,
    lr,
    zero_grad=True,
    before=True,
    per_epoch=False,
    after_step=False,
    step=True,
):
    """A learner's train, with one switch per mistake below."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    def held_out_loss():
        with torch.no_grad():
            return model.loss(held_out).item()

    train_losses, held_out_losses = [], [held_out_loss()] if before else []
    for _ in range(epochs):
        epoch_losses = []
        for batch in batches:
            loss = model.loss(batch)
            if zero_grad:
                optimizer.zero_grad()
            loss.backward()
            if step:
                optimizer.step()
            epoch_losses.append(model.loss(batch).item() if after_step else loss.item())
        train_losses += [sum(epoch_losses) / len(epoch_losses)] if per_epoch else epoch_losses
        held_out_losses.append(held_out_loss())
    return train_losses, held_out_losses


def training_mistake(name, **mistake):
    def wrong(model, batches, held_out, epochs, lr):
        return a_training_loop(model, batches, held_out, epochs, lr, **mistake)

    wrong.__name__ = name
    return wrong


train_without_zero_grad = training_mistake("train_without_zero_grad", zero_grad=False)
train_without_the_loss_before_training = training_mistake(
    "train_without_the_loss_before_training", before=False
)
train_with_one_loss_per_epoch = training_mistake("train_with_one_loss_per_epoch", per_epoch=True)
train_recording_the_loss_after_the_step = training_mistake(
    "train_recording_the_loss_after_the_step", after_step=True
)
train_without_a_step = training_mistake("train_without_a_step", step=False)


def train_with_a_new_optimizer_every_step(model, batches, held_out, epochs, lr):
    train_losses, held_out_losses = [], [model.loss(held_out).item()]
    for _ in range(epochs):
        for batch in batches:
            optimizer = torch.optim.Adam(model.parameters(), lr=lr)  # Adam's moments start afresh each step
            loss = model.loss(batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            train_losses.append(loss.item())
        held_out_losses.append(model.loss(held_out).item())
    return train_losses, held_out_losses


def train_ascending_the_loss(model, batches, held_out, epochs, lr):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, maximize=True)
    train_losses, held_out_losses = [], [model.loss(held_out).item()]
    for _ in range(epochs):
        for batch in batches:
            loss = model.loss(batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            train_losses.append(loss.item())
        held_out_losses.append(model.loss(held_out).item())
    return train_losses, held_out_losses


def train_evaluating_the_last_batch(model, batches, held_out, epochs, lr):
    return a_training_loop(model, batches, batches[-1], epochs, lr)


def q1_answer(
    train_data, test_data, d, dset_id, make_model=Histogram, epochs=30, lr=1.0, before=True, returns="p"
):
    """A learner's q1_a (or q1_b with make_model=DiscretizedLogisticMixture), with one switch per mistake below."""
    torch.manual_seed(0)
    model = make_model(d)
    untrained = model.distribution()
    train_losses, test_losses = a_training_loop(
        model, [torch.as_tensor(train_data)], torch.as_tensor(test_data), epochs, lr, before=before
    )
    p = {
        "p": model.distribution(),
        "log p": np.log(model.distribution()),
        "untrained": untrained,
        "logits": model.logits.detach().numpy() if hasattr(model, "logits") else None,
    }[returns]
    return train_losses, test_losses, p


def answer_mistake(name, **mistake):
    def wrong(train_data, test_data, d, dset_id):
        return q1_answer(train_data, test_data, d, dset_id, **mistake)

    wrong.__name__ = name
    return wrong


q1_a_without_the_test_loss_before_training = answer_mistake(
    "q1_a_without_the_test_loss_before_training", before=False
)
q1_a_returning_log_probabilities = answer_mistake("q1_a_returning_log_probabilities", returns="log p")
q1_a_returning_the_untrained_distribution = answer_mistake(
    "q1_a_returning_the_untrained_distribution", returns="untrained"
)
q1_a_returning_the_logits = answer_mistake("q1_a_returning_the_logits", returns="logits")
q1_b_without_the_test_loss_before_training = answer_mistake(
    "q1_b_without_the_test_loss_before_training", make_model=DiscretizedLogisticMixture, lr=0.2, before=False
)


def q1_a_returning_two_things(train_data, test_data, d, dset_id):
    return q1_answer(train_data, test_data, d, dset_id)[:2]


def unwritten_helper(logits):
    raise NotImplementedError


def histogram_calling_an_unwritten_helper(logits, x):
    return unwritten_helper(logits)[x]


def mixture(
    x,
    logits,
    means,
    log_scales,
    d,
    half=0.5,
    scale=torch.exp,
    raw_logits=False,
    edges="right",
    width="interior",
    logits_of=lambda logits: logits,
):
    """A learner's weighted_component_log_probs in log space, with one switch per mistake below."""
    s = scale(log_scales)
    centered = x[..., None].float() - means
    up, down = F.logsigmoid((centered + half) / s), F.logsigmoid(-(centered - half) / s)
    width_term = torch.log(-torch.expm1(-2 * half / s))
    first, last = (x == 0)[..., None], (x == d - 1)[..., None]
    if edges == "swapped":
        first, last = last, first
    if edges == "none":
        first = last = torch.zeros_like(first)
    if edges == "batch":  # the batch's smallest and largest values taken for the edge bins
        first, last = (x == x.min())[..., None], (x == x.max())[..., None]
    log_bin = torch.where(first, up, torch.where(last, down, up + down))
    if width == "interior":
        log_bin = log_bin + torch.where(first | last, 0.0, width_term)
    elif width == "everywhere":
        log_bin = log_bin + width_term
    return (logits_of(logits) if raw_logits else logits.log_softmax(-1)) + log_bin


def mixture_mistake(name, **mistake):
    def wrong(x, logits, means, log_scales, d):
        return mixture(x, logits, means, log_scales, d, **mistake)

    wrong.__name__ = name
    return wrong


mixture_without_edge_bins = mixture_mistake("mixture_without_edge_bins", edges="none")
mixture_with_the_edge_bins_swapped = mixture_mistake("mixture_with_the_edge_bins_swapped", edges="swapped")
mixture_without_the_width_term = mixture_mistake("mixture_without_the_width_term", width="nowhere")
mixture_with_the_width_term_at_the_edges = mixture_mistake(
    "mixture_with_the_width_term_at_the_edges", width="everywhere"
)
mixture_with_the_raw_logits = mixture_mistake("mixture_with_the_raw_logits", raw_logits=True)
mixture_with_a_softplus_scale = mixture_mistake("mixture_with_a_softplus_scale", scale=F.softplus)
mixture_with_the_log_scale_as_scale = mixture_mistake(
    "mixture_with_the_log_scale_as_scale", scale=lambda s: s
)
mixture_with_the_edges_at_the_batchs_minimum_and_maximum = mixture_mistake(
    "mixture_with_the_edges_at_the_batchs_minimum_and_maximum", edges="batch"
)
mixture_with_the_weights_detached = mixture_mistake(
    "mixture_with_the_weights_detached", raw_logits=True, logits_of=lambda logits: logits.data.log_softmax(-1)
)
mixture_with_the_scale_through_numpy = mixture_mistake(
    "mixture_with_the_scale_through_numpy",
    scale=lambda log_s: torch.from_numpy(np.exp(log_s.detach().numpy())),
)
mixture_with_bins_from_x_minus_1_to_x_plus_1 = mixture_mistake(
    "mixture_with_bins_from_x_minus_1_to_x_plus_1", half=1.0
)


def mixture_naive_difference(x, logits, means, log_scales, d):
    s = log_scales.exp()
    centered = x[..., None].float() - means
    upper = torch.where(x[..., None] == d - 1, 1.0, torch.sigmoid((centered + 0.5) / s))
    lower = torch.where(x[..., None] == 0, 0.0, torch.sigmoid((centered - 0.5) / s))
    return logits.log_softmax(-1) + torch.log(upper - lower)


def mixture_difference_reversed(x, logits, means, log_scales, d):
    s = log_scales.exp()
    centered = x[..., None].float() - means
    upper = torch.where(x[..., None] == d - 1, 1.0, torch.sigmoid((centered + 0.5) / s))
    lower = torch.where(x[..., None] == 0, 0.0, torch.sigmoid((centered - 0.5) / s))
    return logits.log_softmax(-1) + torch.where(
        (x[..., None] == 0) | (x[..., None] == d - 1), torch.log(upper - lower), torch.log(lower - upper)
    )  # the log of a negative number: nan


def mixture_without_weights(x, logits, means, log_scales, d):
    return EXERCISES["weighted_component_log_probs"].reference(
        x, logits, means, log_scales, d
    ) - logits.log_softmax(-1)


def numbers_from_one_to_D(ordering, hidden_sizes, generator=None):
    D = len(ordering)
    return [ordering.argsort() + 1] + [
        torch.randint(1, D + 1, (h,), generator=generator) for h in hidden_sizes
    ]


def numbers_ignoring_the_minimum(ordering, hidden_sizes, generator=None):
    D = len(ordering)
    return [ordering.argsort() + 1] + [torch.randint(1, D, (h,), generator=generator) for h in hidden_sizes]


def numbers_missing_D_minus_1(ordering, hidden_sizes, generator=None):
    numbers = [ordering.argsort() + 1]
    for h in hidden_sizes:
        low = int(numbers[-1].min())
        numbers.append(torch.randint(low, max(low + 1, len(ordering) - 1), (h,), generator=generator))
    return numbers


def numbers_from_the_maximum(ordering, hidden_sizes, generator=None):
    numbers = [ordering.argsort() + 1]
    for h in hidden_sizes:
        numbers.append(torch.randint(int(numbers[-1].max()), len(ordering), (h,), generator=generator))
    return numbers


def numbers_as_int32(ordering, hidden_sizes, generator=None):
    return [m.int() for m in EXERCISES["connectivity_numbers"].reference(ordering, hidden_sizes, generator)]


def numbers_of_the_ordering(ordering, hidden_sizes, generator=None):
    right = EXERCISES["connectivity_numbers"].reference(ordering, hidden_sizes, generator)
    return [torch.as_tensor(ordering) + 1] + right[1:]


def numbers_without_the_generator(ordering, hidden_sizes, generator=None):
    return EXERCISES["connectivity_numbers"].reference(ordering, hidden_sizes, None)


def numbers_with_a_new_generator(ordering, hidden_sizes, generator=None):
    return EXERCISES["connectivity_numbers"].reference(ordering, hidden_sizes, torch.Generator())


def numbers_reseeding_the_generator(ordering, hidden_sizes, generator=None):
    generator.manual_seed(0)
    return EXERCISES["connectivity_numbers"].reference(ordering, hidden_sizes, generator)


def numbers_seeding_torch(ordering, hidden_sizes, generator=None):
    torch.manual_seed(0)
    return EXERCISES["connectivity_numbers"].reference(ordering, hidden_sizes, None)


def masks_non_strict(numbers):
    masks = [m_out[:, None] >= m_in[None, :] for m_in, m_out in zip(numbers[:-1], numbers[1:])]
    return masks + [numbers[0][:, None] >= numbers[-1][None, :]]


def masks_strict_everywhere(numbers):
    masks = [m_out[:, None] > m_in[None, :] for m_in, m_out in zip(numbers[:-1], numbers[1:])]
    return masks + [numbers[0][:, None] > numbers[-1][None, :]]


def masks_transposed(numbers):
    return [m.T for m in EXERCISES["masks_from_numbers"].reference(numbers)]


def masks_with_the_hidden_comparison_reversed(numbers):
    masks = [m_in[None, :] >= m_out[:, None] for m_in, m_out in zip(numbers[:-1], numbers[1:])]
    return masks + [numbers[0][:, None] > numbers[-1][None, :]]


def masks_reading_the_first_hidden_layer(numbers):
    masks = [m_out[:, None] >= m_in[None, :] for m_in, m_out in zip(numbers[:-1], numbers[1:])]
    return masks + [numbers[0][:, None] > numbers[1 if len(numbers) > 1 else 0][None, :]]


def masks_editing_numbers_in_place(numbers):
    numbers[0] -= 1  # m0 - 1 >= m_L is m0 > m_L, but the hidden masks below then read the edited m0
    masks = [m_out[:, None] >= m_in[None, :] for m_in, m_out in zip(numbers[:-1], numbers[1:])]
    return masks + [numbers[0][:, None] >= numbers[-1][None, :]]


def bernoulli_naive(logits, x):
    return x * torch.log(torch.sigmoid(logits)) + (1 - x) * torch.log(1 - torch.sigmoid(logits))


def bernoulli_swapped(logits, x):
    return x * F.logsigmoid(-logits) + (1 - x) * F.logsigmoid(logits)


def bernoulli_per_image(logits, x):
    return EXERCISES["bernoulli_log_prob"].reference(logits, x).sum(-1)


def bernoulli_cross_entropy_of_probabilities(logits, x):
    return -F.binary_cross_entropy(torch.sigmoid(logits), x.float(), reduction="none")


def bernoulli_where_with_a_nan_gradient(logits, x):
    # each branch of log σ(ℓ) is exact where it is used, but the other overflows and its nan gradient leaks through
    log_sigmoid = torch.where(
        logits > 0, -torch.log1p(torch.exp(-logits)), logits - torch.log1p(torch.exp(logits))
    )
    return x * log_sigmoid + (1 - x) * (log_sigmoid - logits)  # log σ(−ℓ) = log σ(ℓ) − ℓ


def sampler_ignoring_the_ordering(model, u, mask_id, given, known):
    x = torch.zeros(u.shape, dtype=torch.long)
    for dim in range(model.D):
        x[:, dim] = draw_categories(model(x, mask_id)[:, dim], u[:, dim])
    return x


def sampler_with_its_own_randomness(model, u, mask_id, given, known):
    return EXERCISES["sample_plain"].reference(model, torch.rand_like(u), mask_id, given, known)  # not u


def sampler_ignoring_given(model, u, mask_id, given, known):
    return EXERCISES["sample_plain"].reference(model, u, mask_id, given, [False] * model.D)


def sampler_of_mask_0(model, u, mask_id, given, known):
    x = torch.zeros(u.shape, dtype=torch.long)
    for dim in model.orderings[0].tolist():  # and model(x): mask 0 in eval mode, whatever mask_id
        x[:, dim] = given[:, dim] if known[dim] else draw_categories(model(x)[:, dim], u[:, dim])
    return x


def sampler_taking_the_argmax(model, u, mask_id, given, known):
    x = torch.zeros(u.shape, dtype=torch.long)
    for dim in model.orderings[mask_id].tolist():
        x[:, dim] = (
            given[:, dim] if known[dim] else (model(x, mask_id)[:, dim] > 0).long()
        )  # the likelier bit
    return x


def bernoulli_probability(logits, x):
    return torch.where(x == 1, torch.sigmoid(logits), torch.sigmoid(-logits))  # p(x), not log p(x)


def bernoulli_sigma_instead_of_log_sigma(logits, x):
    return x * torch.sigmoid(logits) + (1 - x) * F.logsigmoid(-logits)


def bernoulli_without_the_minus_sign(logits, x):
    return F.binary_cross_entropy_with_logits(logits, x.float(), reduction="none")  # −log p(x), the loss


def bernoulli_in_bits(logits, x):
    return (x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)) / torch.log(torch.tensor(2.0))


def sampler_by_the_opposite_rule(model, u, mask_id, given, known):
    x = torch.zeros(u.shape, dtype=torch.long)
    for dim in model.orderings[mask_id].tolist():
        if known[dim]:
            x[:, dim] = given[:, dim]
        else:  # x = 1 when u < σ(ℓ): the right distribution, but 1 gets the low uniforms
            x[:, dim] = (u[:, dim] < torch.sigmoid(model(x, mask_id)[:, dim])).long()
    return x


def direct_mask_not_strict(ordering):
    position = ordering.argsort()
    return (position[:, None] >= position[None, :]).to(torch.uint8)


def direct_mask_transposed(ordering):
    position = ordering.argsort()
    return (position[:, None] < position[None, :]).to(torch.uint8)


def direct_mask_by_index(ordering):
    return torch.ones(len(ordering), len(ordering), dtype=torch.uint8).tril(-1)


def direct_mask_of_the_ordering_itself(ordering):
    return (ordering[:, None] > ordering[None, :]).to(torch.uint8)


WRONG = [
    ("histogram_log_prob", histogram_over_the_batch, "depends on the other examples in the batch"),
    ("histogram_log_prob", histogram_unnormalized, "by enumeration, sum to"),
    ("histogram_log_prob", histogram_naive, "never exp(θ) or the log of a softmax"),
    (
        "histogram_log_prob",
        histogram_probabilities,
        "Your values themselves sum to 1: they are the probabilities softmax(θ)_x; return their log",
    ),
    (
        "histogram_log_prob",
        histogram_negative_log_likelihood,
        "they are −log p(x), the negative log-likelihood; return log p(x), which is at most 0",
    ),
    (
        "histogram_log_prob",
        histogram_in_bits,
        "2^value sums to 1: your values are logarithms to base 2 (torch.log2)",
    ),
    (
        "histogram_log_prob",
        histogram_log_softmax_of_x,
        "raised NotImplementedError: \"log_softmax_kernel_impl\" not implemented for 'Long'\n  torch has no such "
        "operation for Long tensors: an integer tensor reached an operation on real numbers",
    ),
    (
        "histogram_log_prob",
        histogram_with_its_parameters_swapped,
        "that your function takes its parameters in the order (logits, x)",
    ),
    (
        "histogram_log_prob",
        histogram_calling_an_unwritten_helper,
        "histogram_log_prob(logits, x) raised NotImplementedError: \n  unwritten_helper, which your function calls, "
        "raised it: that function is not written yet",
    ),
    (
        "weighted_component_log_probs",
        mixture_without_edge_bins,
        "The first wrong value is at x = 0, the edge bin 0, which takes all the mass below 0.5, for component 0 "
        "(μ = 1.30, s = 0.80, π = 0.306): yours is -2.93628, it should be log π_i + log σ(u) = -2.49849, with "
        "u = (x + 0.5 − μ)/s and l = (x − 0.5 − μ)/s. The edge bin 0 should take all the mass below 0.5, log σ(u); "
        "yours is the interior bins' formula",
    ),
    (
        "weighted_component_log_probs",
        mixture_with_the_edge_bins_swapped,
        "x = 0, the edge bin 0, which takes all the mass below 0.5, for component 0 (μ = 1.30, s = 0.80, π = 0.306): "
        "yours is -1.28544, it should be log π_i + log σ(u) = -2.49849, with u = (x + 0.5 − μ)/s and "
        "l = (x − 0.5 − μ)/s. Yours is the other edge bin's formula: the edge bins are swapped",
    ),
    (
        "weighted_component_log_probs",
        mixture_without_the_width_term,
        "The first wrong value is at x = 1, an interior bin, for component 0 (μ = 1.30, s = 0.80, π = 0.306): yours is "
        "-2.07443, it should be log π_i + log σ(u) + log σ(−l) + log(1 − e^(−1/s)) = -2.41201, with u = (x + 0.5 − μ)/s "
        "and l = (x − 0.5 − μ)/s. Yours lacks the width term log(1 − e^(−1/s)) = -0.3376",
    ),
    (
        "weighted_component_log_probs",
        mixture_with_the_width_term_at_the_edges,
        "x = 0, the edge bin 0, which takes all the mass below 0.5, for component 0 (μ = 1.30, s = 0.80, π = 0.306): "
        "yours is -2.83607, it should be log π_i + log σ(u) = -2.49849, with u = (x + 0.5 − μ)/s and "
        "l = (x − 0.5 − μ)/s. Yours adds the width term log(1 − e^(−1/s)), which belongs to the interior bins only",
    ),
    (
        "weighted_component_log_probs",
        mixture_with_the_raw_logits,
        "Yours adds the raw logit 0.3 where log π_i = log_softmax(logits)_i = -1.185: the weights then follow "
        "exp(logits), which sum to 4.416, not softmax(logits), which sums to 1",
    ),
    (
        "weighted_component_log_probs",
        mixture_with_a_softplus_scale,
        "each component's probabilities sum to its weight π_i, but not every value is right. The first wrong value is "
        "at x = 0, the edge bin 0, which takes all the mass below 0.5, for component 0 (μ = 1.30, s = 0.80, π = 0.306): "
        "yours is -2.77452, it should be log π_i + log σ(u) = -2.49849, with u = (x + 0.5 − μ)/s and "
        "l = (x − 0.5 − μ)/s. Yours is the value for the scale s = softplus(log_scales)_i = 0.5878: log_scales holds "
        "log s, so s = exp(log_scales)",
    ),
    (
        "weighted_component_log_probs",
        mixture_with_the_log_scale_as_scale,
        "Yours is the value for the scale s = log_scales_i = -0.2231: log_scales holds log s, so s = exp(log_scales)",
    ),
    (
        "weighted_component_log_probs",
        mixture_with_bins_from_x_minus_1_to_x_plus_1,
        "Yours is the mass of [x − 1, x + 1], but bin x is [x − 0.5, x + 0.5], so that the bins do not overlap",
    ),
    (
        "weighted_component_log_probs",
        mixture_difference_reversed,
        "by enumeration the components' probabilities sum to [nan, nan, nan], as some values are nan. The first wrong "
        "value is at x = 1, an interior bin, for component 0 (μ = 1.30, s = 0.80, π = 0.306): yours is nan, it should "
        "be log π_i + log σ(u) + log σ(−l) + log(1 − e^(−1/s)) = -2.41201, with u = (x + 0.5 − μ)/s and "
        "l = (x − 0.5 − μ)/s. Yours is nan, the result of an invalid operation: the log of a negative number (such as "
        "σ(l) − σ(u), the difference the wrong way round)",
    ),
    ("weighted_component_log_probs", mixture_naive_difference, "log-probabilities become -inf at scale 1e-4"),
    (
        "histogram_log_prob",
        histogram_with_a_detached_normalizer,
        "the values are right, but the gradient to logits is not: for a weighted sum of the log-probabilities it "
        "is [0.561, 0.609, 0, 2.14], should be [-3.15, 0.515, -0.00218, 1.61]. Part of the formula that depends on "
        "logits is cut from the graph (.data, .detach(), .item() or numpy), so it counts as a constant in training. "
        "If it is the normalizer logsumexp(θ)",
    ),
    (
        "weighted_component_log_probs",
        mixture_with_the_edges_at_the_batchs_minimum_and_maximum,
        "in the batch x = [[2, 5], [7, 3]], which holds neither 0 nor d − 1 = 9, x = 2 gets [-1.3866, -3.6595, "
        "-11.9852], but the same category among all d gets [-2.5502, -4.4918, -12.1307]: a value's probability must "
        "not depend on the batch. x = 2 is the batch's smallest value, treated as an edge bin: the edge bins are the "
        "categories 0 and d − 1 whatever the batch holds, so compare x with 0 and d − 1, not with the batch's "
        "minimum and maximum",
    ),
    (
        "weighted_component_log_probs",
        mixture_with_the_weights_detached,
        "the values are right, but they carry no gradient to logits: it was used outside torch's graph (logits.data, "
        ".detach(), .item() or numpy), so training would never change logits. Compute with torch operations on logits "
        "itself (the weights π = softmax(logits) must be trained too",
    ),
    (
        "weighted_component_log_probs",
        mixture_with_the_scale_through_numpy,
        "they carry no gradient to log_scales: it was used outside torch's graph (log_scales.data, .detach(), "
        ".item() or numpy), so training would never change log_scales. Compute with torch operations on log_scales "
        "itself (s = exp(log_scales) with torch.exp, not np.exp of a numpy copy)",
    ),
    ("train", train_without_zero_grad, "call optimizer.zero_grad() before each loss.backward()"),
    (
        "train",
        train_without_the_loss_before_training,
        "train returned 3 held-out losses for 3 epochs: the course wants 4, the loss before training, then one after "
        "each epoch: the one before training is missing, evaluate once before the first epoch",
    ),
    (
        "train",
        train_with_one_loss_per_epoch,
        "train returned 3 train losses for 3 epochs of 3 batches: the course wants one per iteration, the loss of "
        "every batch, 9 here, not one per epoch",
    ),
    (
        "train",
        train_recording_the_loss_after_the_step,
        "the loss you call backward() on), not after the step",
    ),
    ("train", train_without_a_step, "train left the model's parameters as they were"),
    ("train", train_with_a_new_optimizer_every_step, "(a new one per step forgets Adam's moments)"),
    ("train", train_ascending_the_loss, "train: the held-out loss went from 1.6094 to"),
    (
        "train",
        train_evaluating_the_last_batch,
        "train: held_out_losses[-1] is 1.2619, but the trained model's loss on held_out is 1.3485: after each epoch, "
        "evaluate model.loss(held_out)",
    ),
    (
        "q1_a",
        q1_a_without_the_test_loss_before_training,
        "q1_a returned 30 train losses and 30 test losses: with the test loss before training first",
    ),
    ("q1_a", q1_a_returning_log_probabilities, "must hold probabilities (finite and >= 0)"),
    ("q1_a", q1_a_returning_the_logits, "the distribution q1_a returned"),
    (
        "q1_a",
        q1_a_returning_the_untrained_distribution,
        "but the distribution returned gives the test data a mean NLL of 2.9957: return the trained model's",
    ),
    (
        "q1_a",
        q1_a_returning_two_things,
        "q1_a must return three things, (train_losses, test_losses, distribution)",
    ),
    (
        "q1_b",
        q1_b_without_the_test_loss_before_training,
        "Does test_losses start with the loss before training?",
    ),
    ("weighted_component_log_probs", mixture_without_weights, "sum to 1, not to its weight π_i"),
    ("connectivity_numbers", numbers_from_one_to_D, "it can feed no output"),
    ("connectivity_numbers", numbers_ignoring_the_minimum, "it gets no input"),
    ("connectivity_numbers", numbers_missing_D_minus_1, "was ever numbered [4]"),
    (
        "connectivity_numbers",
        numbers_from_the_maximum,
        "torch.randint(low, high) got low = 4 ≥ high = 4, an empty range (with low = 4 = D, the largest number of the "
        "inputs, nothing is left): hidden layer l's numbers lie in [min(m_(l−1)), D − 1], so low is the smallest "
        "number of the layer before (its minimum, not its maximum)",
    ),
    (
        "connectivity_numbers",
        numbers_as_int32,
        "one-dimensional long tensors (torch.long, what the model stores)",
    ),
    ("connectivity_numbers", numbers_of_the_ordering, "(that is ordering + 1"),
    (
        "connectivity_numbers",
        numbers_without_the_generator,
        "connectivity_numbers draws nothing from the generator it is given (its state is unchanged after the call): a "
        "MADE's seed would not fix its masks",
    ),
    (
        "connectivity_numbers",
        numbers_with_a_new_generator,
        "connectivity_numbers draws nothing from the generator it is given (its state is unchanged after the call): "
        "MADE(seed=1) and MADE(seed=2) would get the same masks, and so would all masks of a model with num_masks > 1",
    ),
    (
        "connectivity_numbers",
        numbers_reseeding_the_generator,
        "generators seeded differently (7 and 8) gave the same numbers: MADE(seed=1) and MADE(seed=2) would get the "
        "same masks",
    ),
    (
        "connectivity_numbers",
        numbers_seeding_torch,
        "connectivity_numbers reseeds torch's global generator (torch.manual_seed(0) or the like)",
    ),
    (
        "masks_from_numbers",
        masks_non_strict,
        "mask 2 (hidden layer 2 → the outputs: the output mask) keeps the weight from unit 0 of hidden layer 2 "
        "(number 2) to output 0 (number 2); it should keep exactly the weights with m0[i] > m2[k], strictly: output i "
        "reads only units numbered below its position. It is not strict (≥): output i would read hidden units numbered "
        "m0[i], which see input i itself; the output mask keeps m0[i] > m_L[k] (>, not ≥). As it is, output 0 can see "
        "input 0, its own dimension",
    ),
    (
        "masks_from_numbers",
        masks_strict_everywhere,
        "mask 0 (the inputs → hidden layer 1) drops the weight from input 3 (number 3) to unit 0 of hidden layer 1 "
        "(number 3); it should keep exactly the weights with m1[k] ≥ m0[j]: a unit reads the units below numbered up "
        "to its own number. It is strict (>)",
    ),
    ("masks_from_numbers", masks_transposed, "masks of shapes [(6, 4), (6, 6), (4, 6)] (out, in"),
    (
        "masks_from_numbers",
        masks_with_the_hidden_comparison_reversed,
        "mask 0 (the inputs → hidden layer 1) drops the weight from input 0 (number 2) to unit 0 of hidden layer 1 "
        "(number 3); it should keep exactly the weights with m1[k] ≥ m0[j]: a unit reads the units below numbered up "
        "to its own number. It compares the other way round (m_in ≥ m_out)",
    ),
    (
        "masks_from_numbers",
        masks_reading_the_first_hidden_layer,
        "mask 2 (hidden layer 2 → the outputs: the output mask) keeps the weight from unit 1 of hidden layer 2 "
        "(number 2) to output 0 (number 2); it should keep exactly the weights with m0[i] > m2[k], strictly: output i "
        "reads only units numbered below its position. It compares m0 with the numbers of hidden layer 1 (numbers[1]), "
        "but the output mask reads the last hidden layer: compare with numbers[-1]",
    ),
    (
        "masks_from_numbers",
        masks_editing_numbers_in_place,
        "masks_from_numbers changed the numbers it was given: numbers[0] was [2, 4, 1, 3], is [1, 3, 0, 2] after the "
        "call. An in-place operation (numbers[0] -= 1",
    ),
    ("bernoulli_log_prob", bernoulli_naive, "compute log σ(ℓ) without forming σ(ℓ)"),
    ("bernoulli_log_prob", bernoulli_swapped, "x = 1 gets log σ(−ℓ)"),
    ("bernoulli_log_prob", bernoulli_per_image, "one log-probability per bit, of the logits' shape"),
    (
        "bernoulli_log_prob",
        bernoulli_cross_entropy_of_probabilities,
        "log p(x = 0) at logit 17 is -100, should be -17: −100 is the floor of F.binary_cross_entropy",
    ),
    (
        "bernoulli_log_prob",
        bernoulli_where_with_a_nan_gradient,
        "log p(x = 1) is right at logit -100, but its gradient there is nan, should be x − σ(ℓ) = 1",
    ),
    ("bernoulli_log_prob", bernoulli_probability, "the function returns p(x) instead of log p(x)"),
    ("bernoulli_log_prob", bernoulli_sigma_instead_of_log_sigma, "for x = 1 your value is σ(ℓ)"),
    (
        "bernoulli_log_prob",
        bernoulli_without_the_minus_sign,
        "the negatives of log p(x): a missing minus sign",
    ),
    ("bernoulli_log_prob", bernoulli_in_bits, "log base 2, in bits. Use the natural logarithm"),
    ("sample_plain", sampler_ignoring_the_ordering, "the samples do not follow the model"),
    (
        "sample_plain",
        sampler_with_its_own_randomness,
        "draw dimension dim with u[:, dim] (not fresh random numbers)",
    ),
    (
        "sample_plain",
        sampler_by_the_opposite_rule,
        "yours set a bit to 1 when u < σ(ℓ), giving x = 1 the low uniforms, the opposite rule. Use the inverse-CDF "
        "rule, one for every d: category k when F(k − 1) ≤ u < F(k), so category 0 gets the low uniforms; for a bit, "
        "x = 1 exactly when u ≥ p(x = 0) = σ(−ℓ)",
    ),
    ("direct_mask", direct_mask_not_strict, "logit 0 would read its own pixel"),
    ("direct_mask", direct_mask_transposed, "your mask is the transpose of the right one"),
    ("direct_mask", direct_mask_by_index, "compare the pixels' positions in the ordering, not their indices"),
    (
        "direct_mask",
        direct_mask_of_the_ordering_itself,
        "The positions are the inverse permutation of the ordering",
    ),
    ("sample_plain", sampler_ignoring_given, "copy the known dimensions from given"),
    (
        "sample_plain",
        sampler_of_mask_0,
        "with mask_id = 1 (ordering [0, 2, 3, 1]), 20000 samples give chi-square = 3.23e+05 with 14 degrees of freedom "
        "(p = 0.0e+00); x = [0, 0, 1, 1] was drawn 0.113 of the time against p(x) = 0.00139. They are the samples of "
        "mask 0 (ordering [1, 3, 2, 0]) from the same uniforms: your sampler ignores mask_id",
    ),
    (
        "sample_plain",
        sampler_taking_the_argmax,
        "whatever the uniforms u: taking the more likely value of each bit (a logit above 0 gives 1) is not sampling",
    ),
]


@pytest.mark.parametrize("name, wrong, message", WRONG, ids=[w.__name__ for _, w, _ in WRONG])
def test_check_fails_a_known_wrong_solution_with_the_intended_message(name, wrong, message):
    with pytest.raises(ExerciseFailed) as failure:
        check(name)(wrong)
    assert message in str(failure.value)
    assert str(failure.value).startswith(name)


def test_not_written_yet_only_for_the_stubs_own_raise():
    """Torch's NotImplementedError, or one from a function the learner's calls, is the learner's error to see."""
    for wrong in (histogram_log_softmax_of_x, histogram_calling_an_unwritten_helper):
        with pytest.raises(ExerciseFailed) as failure:
            exercises.check_histogram_log_prob(wrong)
        assert "histogram_log_prob is not written yet" not in str(failure.value)
        assert isinstance(
            failure.value.__cause__, NotImplementedError
        )  # its traceback shown above the message


@pytest.mark.parametrize(
    "name, wrong",
    [
        ("histogram_log_prob", histogram_in_reverse),
        ("weighted_component_log_probs", mixture_with_a_softplus_scale),
    ],
)
def test_a_failing_check_prints_no_warning_above_its_message(name, wrong):
    warn_always = torch.is_warn_always_enabled()
    torch.set_warn_always(True)  # torch warns once per process otherwise: an earlier test could hide it
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(ExerciseFailed):
                check(name)(wrong)
    finally:
        torch.set_warn_always(warn_always)
    assert [str(w.message) for w in caught] == []


# --- correct answers written differently from the package's: each passes, and is not taken for the package's ----


def histogram_with_a_manual_logsumexp(logits, x):
    top = logits.max()
    return logits[x] - top - torch.log(torch.exp(logits - top).sum())


def histogram_by_gather(logits, x):
    return torch.log_softmax(logits, dim=-1).gather(0, x.reshape(-1)).reshape(x.shape)


def mixture_one_component_at_a_time(x, logits, means, log_scales, d):
    columns = []
    for i in range(len(means)):
        s, y = torch.exp(log_scales[i]), x.to(means.dtype)
        log_cdf = F.logsigmoid((y + 0.5 - means[i]) / s)  # log σ(u): the mass below x + 0.5
        log_survival = F.logsigmoid(-(y - 0.5 - means[i]) / s)  # log σ(−l): the mass above x − 0.5
        interior = log_cdf + log_survival + torch.log1p(-torch.exp(-1 / s))
        log_bin = torch.where(x == 0, log_cdf, torch.where(x == d - 1, log_survival, interior))
        columns.append(torch.log_softmax(logits, 0)[i] + log_bin)
    return torch.stack(columns, -1)


def numbers_by_a_loop(ordering, hidden_sizes, generator=None):
    D = len(ordering)
    m0 = torch.empty(D, dtype=torch.long)
    for position, dim in enumerate(ordering.tolist()):
        m0[dim] = position + 1
    numbers = [m0]
    for size in hidden_sizes:
        low = int(numbers[-1].min())
        numbers.append(
            low + (torch.rand(size, generator=generator) * (D - low)).long()
        )  # uniform in [low, D − 1]
    return numbers


def masks_with_numpy(numbers):
    m = [n.numpy() for n in numbers]
    masks = [(m_out[:, None] >= m_in[None, :]).astype(np.uint8) for m_in, m_out in zip(m[:-1], m[1:])]
    return [torch.from_numpy(mask) for mask in masks + [(m[0][:, None] > m[-1][None, :]).astype(np.uint8)]]


def masks_by_loops(numbers):
    layers = list(zip(numbers, numbers[1:] + [numbers[0]]))  # (m_in, m_out) of each mask
    masks = []
    for l, (m_in, m_out) in enumerate(layers):
        mask = torch.zeros(len(m_out), len(m_in))
        for k in range(len(m_out)):
            for j in range(len(m_in)):
                mask[k, j] = float(m_out[k] > m_in[j] if l == len(layers) - 1 else m_out[k] >= m_in[j])
        masks.append(mask)
    return masks


def bernoulli_by_softplus(logits, x):
    sign = 2 * x.to(logits.dtype) - 1  # log σ(±ℓ) = −softplus(∓ℓ)
    return -F.softplus(-sign * logits)


def sampler_with_its_own_cdf(model, u, mask_id, given, known):
    x = torch.zeros(u.shape, dtype=torch.long)
    for t in range(model.D):
        dim = int(model.orderings[mask_id][t])
        if known[dim]:
            x[:, dim] = given[:, dim]
        else:  # the notebook's rule: F(0) = p(x = 0) = σ(−ℓ), and x = 1 exactly when u ≥ F(0)
            p_zero = torch.sigmoid(-model(x, mask_id)[:, dim])
            x[:, dim] = torch.where(p_zero <= u[:, dim], 1, 0)
    return x


def direct_mask_by_loops(ordering):
    order = ordering.tolist()
    mask = torch.zeros(len(order), len(order), dtype=torch.uint8)
    for t, i in enumerate(order):
        for j in order[:t]:  # the pixels drawn before pixel i
            mask[i, j] = 1
    return mask


def train_with_other_names(net, data_batches, valid, n_epochs, step_size):
    opt = torch.optim.Adam(net.parameters(), step_size)
    nll = lambda batch: -net.log_prob(batch).mean()
    steps, valid_curve = (
        [],
        [nll(valid).detach()],
    )  # tensors, not numbers: the course's harness reads them too
    for _ in range(n_epochs):
        for batch in data_batches:
            opt.zero_grad(set_to_none=True)
            value = nll(batch)
            value.backward()
            opt.step()
            steps.append(value)
        valid_curve.append(nll(valid).detach())
    return steps, valid_curve  # the loss tensors themselves, with their grad: the course's harness reads them


def q1_a_with_minibatches_and_its_own_loop(train_data, test_data, d, dset_id):
    net = Histogram(d)
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    test = torch.as_tensor(test_data)
    steps, curve = [], [float(-net.log_prob(test).mean())]
    for _ in range(20):
        for batch in BatchLoader(train_data, batch_size=64, shuffle=True):
            loss = -net.log_prob(batch).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps.append(loss.item())
        curve.append(float(-net.log_prob(test).mean()))
    return steps, curve, net.log_prob(torch.arange(d)).exp()  # a tensor with its grad: the harness reads it


def q1_b_with_its_own_loop(train_data, test_data, d, dset_id):
    model = DiscretizedLogisticMixture(d)
    losses, test_losses = a_training_loop(
        model, [torch.as_tensor(train_data)], torch.as_tensor(test_data), 200, 0.2
    )
    return losses, test_losses, torch.softmax(model.log_prob(torch.arange(d)), 0).detach()


CORRECT = [
    ("train", train_with_other_names),
    ("train", training_mistake("a_training_loop")),
    ("q1_a", q1_a_with_minibatches_and_its_own_loop),
    ("q1_a", answer_mistake("q1_answer")),
    ("q1_b", q1_b_with_its_own_loop),
    (
        "q1_b",
        answer_mistake("q1_answer_of_the_mixture", make_model=DiscretizedLogisticMixture, lr=0.2, epochs=441),
    ),
    ("histogram_log_prob", histogram_with_a_manual_logsumexp),
    ("histogram_log_prob", histogram_by_gather),
    ("weighted_component_log_probs", mixture_one_component_at_a_time),
    ("weighted_component_log_probs", mixture_mistake("mixture_in_log_space")),
    ("connectivity_numbers", numbers_by_a_loop),
    ("masks_from_numbers", masks_with_numpy),
    ("masks_from_numbers", masks_by_loops),
    ("bernoulli_log_prob", bernoulli_by_softplus),
    ("sample_plain", sampler_with_its_own_cdf),
    ("direct_mask", direct_mask_by_loops),
]


@pytest.mark.parametrize("name, right", CORRECT, ids=[r.__name__ for _, r in CORRECT])
def test_check_passes_a_correct_answer_written_differently(name, right, capsys):
    check(name)(right)
    out = capsys.readouterr().out
    assert out.startswith(f"{name}: OK, ") and out.count("\n") == 1 and "package's own" not in out


@pytest.mark.parametrize("name", [name for name, e in EXERCISES.items() if e.reference is not None])
def test_the_package_function_passes_but_is_named_as_not_the_learners(name, capsys):
    reference = EXERCISES[name].reference
    check(name)(reference)
    out = capsys.readouterr().out
    assert out.startswith(f"{name}: OK, ") and out.count("\n") == 1
    assert out.rstrip().endswith(
        f"; but this was the package's own {reference.__module__}.{reference.__qualname__}, "
        f"not yours: run the cell that defines your {name}, then this check again"
    )


def test_a_check_run_before_the_learners_cell_says_it_checked_the_package_function(capsys):
    from helpers.models.masks import connectivity_numbers  # as notebook 3 imports it, before its stubs

    exercises.check_connectivity_numbers(connectivity_numbers)
    assert "the package's own helpers.models.masks.connectivity_numbers, not yours" in capsys.readouterr().out


# --- bad input: a clear message naming the exercise and its signature; the notebook's state unharmed ----------


@pytest.mark.parametrize("name", EXERCISES)
def test_something_that_is_not_a_function_is_named(name):
    with pytest.raises(
        ExerciseFailed,
        match=rf"check_{name} takes your function {name}, got 3 .*expected: "
        rf"{name}\(",
    ) as failure:
        check(name)(3)
    assert EXERCISES[name].signature in str(failure.value)


@pytest.mark.parametrize("name", EXERCISES)
def test_a_function_with_the_wrong_parameters_is_named(name):
    with pytest.raises(ExerciseFailed, match=rf"{name} must take the parameters") as failure:
        check(name)(lambda only_one, two, three, four, five, six: None)
    assert EXERCISES[name].signature in str(failure.value)


@pytest.mark.parametrize("name", EXERCISES)
def test_a_function_that_raises_is_named_with_its_error_and_the_random_state_is_restored(name):
    def not_yet(*args):
        torch.rand(3), np.random.rand(3)  # draws from the notebook's generators, which the check must restore
        raise NotImplementedError

    def broken(*args):
        raise IndexError("index 7 is out of bounds")

    torch.manual_seed(1), np.random.seed(1)
    expected = torch.rand(2), np.random.rand(2)
    torch.manual_seed(1), np.random.seed(1)
    with pytest.raises(ExerciseFailed, match=rf"{name} is not written yet"):
        check(name)(not_yet)
    assert torch.equal(torch.rand(2), expected[0]) and np.array_equal(np.random.rand(2), expected[1])
    with pytest.raises(ExerciseFailed, match=r"raised IndexError: index 7 is out of bounds") as failure:
        check(name)(broken)
    assert EXERCISES[name].signature in str(failure.value)
    assert isinstance(failure.value.__cause__, IndexError)  # the learner's traceback stays visible


def test_every_random_state_a_check_touches_is_restored(monkeypatch):
    """With no GPU here, CUDA (two devices) and MPS are stand-ins that record their calls: each state is saved before
    a check and set back after, and none is reseeded; the CPU's, Python's and numpy's generators are as before,
    whether the check passes or fails and though the learner's function draws from each."""

    def drawing_from_every_generator(logits, x):
        random.random(), np.random.rand(), torch.rand(1)
        return logits.log_softmax(0)[x]

    def wrong_and_drawing_from_every_generator(logits, x):
        return drawing_from_every_generator(logits, x).exp()

    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: ["state of cuda:0", "state of cuda:1"])
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda states: calls.append(("cuda", states)))
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setattr(torch.mps, "get_rng_state", lambda: "state of mps")
    monkeypatch.setattr(torch.mps, "set_rng_state", lambda state: calls.append(("mps", state)))
    for module, seeding in (
        (torch.cuda, "manual_seed_all"),
        (torch.cuda, "manual_seed"),
        (torch.mps, "manual_seed"),
    ):
        monkeypatch.setattr(module, seeding, lambda seed, seeding=seeding: calls.append((seeding, seed)))
    for fn in (drawing_from_every_generator, wrong_and_drawing_from_every_generator):
        before = random.getstate(), np.random.get_state(), torch.get_rng_state()
        calls.clear()
        if fn is drawing_from_every_generator:
            exercises.check_histogram_log_prob(fn)
        else:
            with pytest.raises(ExerciseFailed):
                exercises.check_histogram_log_prob(fn)
        assert calls == [("cuda", ["state of cuda:0", "state of cuda:1"]), ("mps", "state of mps")]
        assert random.getstate() == before[0] and torch.equal(torch.get_rng_state(), before[2])
        assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), before[1]))


def test_a_function_reseeding_torch_leaves_the_notebooks_generator_as_it_was():
    torch.manual_seed(3)
    expected = torch.rand(2)
    torch.manual_seed(3)
    with pytest.raises(ExerciseFailed, match="reseeds torch's global generator"):
        exercises.check_connectivity_numbers(numbers_seeding_torch)
    assert torch.initial_seed() == 3 and torch.equal(torch.rand(2), expected)


def test_a_correct_function_computing_in_float64_passes(capsys):
    exercises.check_histogram_log_prob(lambda logits, x: logits.double().log_softmax(0)[x])
    assert capsys.readouterr().out.startswith("histogram_log_prob: OK, ")


# --- notebook 3: the masked layer, the one-hot MADE class and q2_a, judged by behaviour -------------------------


class LayerAsTheNotebook(torch.nn.Linear):
    def __init__(self, in_features, out_features, mask):
        super().__init__(in_features, out_features)
        self.register_buffer("mask", mask.float())

    def forward(self, x):
        return F.linear(x, self.weight * self.mask, self.bias)


class LayerWithAPlainMask(LayerAsTheNotebook):
    def __init__(self, in_features, out_features, mask):
        torch.nn.Linear.__init__(self, in_features, out_features)
        self.mask = mask.float()  # not a buffer: .to(device) leaves it behind


class LayerWithATrainedMask(LayerAsTheNotebook):
    def __init__(self, in_features, out_features, mask):
        torch.nn.Linear.__init__(self, in_features, out_features)
        self.mask = torch.nn.Parameter(mask.float())


class LayerMaskedOnce(torch.nn.Linear):
    def __init__(self, in_features, out_features, mask):
        super().__init__(in_features, out_features)
        with torch.no_grad():
            self.weight *= mask  # dropped weights are zero now, but their gradients are not


class LayerWithOtherNames(torch.nn.Module):
    """A correct masked layer that is no nn.Linear: a linear inside, the mask a buffer under another name."""

    def __init__(self, n_in, n_out, connections):
        super().__init__()
        self.inner = torch.nn.Linear(n_in, n_out)
        self.register_buffer("keep", connections.bool())

    def forward(self, h):
        return h @ torch.where(self.keep, self.inner.weight, 0.0).T + self.inner.bias


def one_hot_made(layer=LayerAsTheNotebook, numbers_of=None, output_compare=torch.gt, keep_ordering=True):
    """The notebook's OneHotMADE, with one part swapped for a known mistake."""

    class Made(torch.nn.Module):
        def __init__(self, D, d, hidden_sizes, ordering=None, seed=0):
            super().__init__()
            self.D, self.d = D, d
            given = torch.arange(D) if ordering is None or not keep_ordering else torch.as_tensor(ordering)
            self.ordering = given
            numbers = connectivity_numbers(given, hidden_sizes, torch.Generator().manual_seed(seed))
            if numbers_of is not None:
                numbers = numbers_of(numbers)
            masks = masks_from_numbers(numbers)
            masks[-1] = output_compare(numbers[0][:, None], numbers[-1][None, :]).to(torch.uint8)
            masks[0], masks[-1] = masks[0].repeat_interleave(d, 1), masks[-1].repeat_interleave(d, 0)
            sizes = [D * d, *hidden_sizes, D * d]
            self.layers = torch.nn.ModuleList(layer(i, o, m) for i, o, m in zip(sizes[:-1], sizes[1:], masks))

        def forward(self, x):
            h = F.one_hot(x, self.d).flatten(1).float()
            for layer in self.layers[:-1]:
                h = F.relu(layer(h))
            return self.layers[-1](h).view(len(x), self.D, self.d)

        def log_prob(self, x):
            return self.forward(x).log_softmax(-1).gather(-1, x[..., None]).squeeze(-1).sum(-1)

        @torch.no_grad()
        def sample(self, n, u=None):
            u = torch.rand(n, self.D) if u is None else u
            x = torch.zeros(n, self.D, dtype=torch.long)
            for i in self.ordering.tolist():
                x[:, i] = draw_categories(self.forward(x)[:, i], u[:, i])
            return x

    return Made


class MadeAsSequential(torch.nn.Module):
    """A correct MADE with other names: an nn.Sequential of masked layers of another kind, log p by cross-entropy,
    the sampler by searchsorted."""

    def __init__(self, D, d, hidden_sizes, ordering=None, seed=0):
        super().__init__()
        self.dims, self.values = D, d
        self.order = list(range(D)) if ordering is None else list(ordering)
        m = connectivity_numbers(torch.tensor(self.order), hidden_sizes, torch.Generator().manual_seed(seed))
        masks = masks_from_numbers(m)
        masks[0], masks[-1] = masks[0].repeat_interleave(d, 1), masks[-1].repeat_interleave(d, 0)
        widths = [D * d, *hidden_sizes, D * d]
        parts = []
        for l, mask in enumerate(masks):
            parts.append(LayerWithOtherNames(widths[l], widths[l + 1], mask))
            if l < len(masks) - 1:
                parts.append(torch.nn.ReLU())
        self.net = torch.nn.Sequential(*parts)

    def forward(self, x):
        return self.net(F.one_hot(x, self.values).reshape(len(x), -1).float()).reshape(len(x), self.dims, -1)

    def log_prob(self, x):
        logits = self(x)
        return -F.cross_entropy(logits.transpose(1, 2), x, reduction="none").sum(1)

    def sample(self, n, u=None):
        u = torch.rand(n, self.dims) if u is None else u
        x = torch.zeros(n, self.dims, dtype=torch.long)
        with torch.no_grad():
            for i in self.order:
                cdf = self(x)[:, i].softmax(-1).cumsum(-1).contiguous()
                x[:, i] = torch.searchsorted(cdf, u[:, i, None].contiguous(), right=True)[:, 0].clamp(
                    max=self.values - 1
                )
        return x


def numbers_reused(numbers):
    return [numbers[0], *[numbers[1]] * (len(numbers) - 1)]


def made_variant(**methods):
    """The notebook's OneHotMADE with some methods replaced by known mistakes."""
    return type("Made", (one_hot_made(),), methods)


def log_prob_of_raw_logits(self, x):
    return self.forward(x).gather(-1, x[..., None]).squeeze(-1).sum(-1)


def log_prob_over_the_dimensions(self, x):
    return self.forward(x).log_softmax(1).gather(-1, x[..., None]).squeeze(-1).sum(-1)


def log_prob_detached(self, x):
    return self.forward(x).log_softmax(-1).gather(-1, x[..., None]).squeeze(-1).sum(-1).detach()


def forward_flat(self, x):
    return one_hot_made().forward(self, x).flatten(1)


@torch.no_grad()
def sample_in_natural_order(self, n, u=None):
    x = torch.zeros(n, self.D, dtype=torch.long)
    for i in range(self.D):
        x[:, i] = draw_categories(self.forward(x)[:, i], u[:, i])
    return x


@torch.no_grad()
def sample_by_argmax(self, n, u=None):
    x = torch.zeros(n, self.D, dtype=torch.long)
    for i in self.ordering.tolist():
        x[:, i] = self.forward(x)[:, i].argmax(-1)
    return x


@torch.no_grad()
def sample_with_fresh_uniforms(self, n, u=None):
    x = torch.zeros(n, self.D, dtype=torch.long)
    for i in self.ordering.tolist():
        x[:, i] = torch.multinomial(self.forward(x)[:, i].softmax(-1), 1)[:, 0]
    return x


WRONG_LAYERS = [
    (LayerWithAPlainMask, "moved with .to(device), the forward pass fails"),
    (LayerWithATrainedMask, "the mask is a parameter, so the optimizer would change it"),
    (LayerMaskedOnce, "weights that the mask drops still get gradients, so training grows them back"),
]


@pytest.mark.parametrize("wrong, message", WRONG_LAYERS, ids=[w.__name__ for w, _ in WRONG_LAYERS])
def test_the_masked_layer_check_names_each_mistake(wrong, message):
    with pytest.raises(ExerciseFailed, match="^MaskedLinear") as failure:
        exercises.check_masked_linear(wrong)
    assert message in str(failure.value)


@pytest.mark.parametrize("right", [LayerAsTheNotebook, LayerWithOtherNames])
def test_the_masked_layer_check_passes_correct_layers_whatever_their_names(right, capsys):
    exercises.check_masked_linear(right)
    assert capsys.readouterr().out.startswith("MaskedLinear: OK, output k changes with input j exactly where")


WRONG_MADES = [
    (one_hot_made(LayerWithAPlainMask), "a tensor the forward pass uses stayed where it was"),
    (
        one_hot_made(numbers_of=numbers_reused),
        "These are the masks of hidden layer 1's numbers reused for the deeper hidden layers",
    ),
    (
        one_hot_made(output_compare=torch.ge),
        "built with ordering [2, 0, 1], the logits of x_0 change with itself",
    ),
    (
        one_hot_made(keep_ordering=False),
        "It reads the dimensions as if in the order 0, 1, ..., D − 1: number the inputs by their positions",
    ),
    (made_variant(log_prob=log_prob_of_raw_logits), "sums to"),
    (
        made_variant(log_prob=log_prob_over_the_dimensions),
        "not 1: log p(x) is",
    ),
    (made_variant(log_prob=log_prob_detached), "log_prob carries no gradient to the model's parameters"),
    (made_variant(forward=forward_flat), "must return the logits, d per dimension, shape (7, 3, 4)"),
    (made_variant(sample=sample_in_natural_order), "the samples do not follow the model's own probabilities"),
    (made_variant(sample=sample_by_argmax), "(argmax) is not sampling"),
    (
        made_variant(sample=sample_with_fresh_uniforms),
        "are not the inverse-CDF draws from the uniforms u given",
    ),
]


@pytest.mark.parametrize("wrong, message", WRONG_MADES, ids=[f"{i}" for i in range(len(WRONG_MADES))])
def test_the_made_check_names_each_mistake(wrong, message):
    with pytest.raises(ExerciseFailed, match="^OneHotMADE") as failure:
        exercises.check_one_hot_made(wrong)
    assert message in str(failure.value)


def test_the_made_check_passes_the_notebooks_model_and_one_with_other_names_built_as_sequential(capsys):
    for right in (one_hot_made(), MadeAsSequential):
        exercises.check_one_hot_made(right)
        assert capsys.readouterr().out.startswith("OneHotMADE: OK, the right shapes; log p sums to 1")


def test_a_made_numbered_by_another_valid_draw_passes_when_the_check_is_given_that_function(capsys):
    class Made(one_hot_made()):
        def __init__(self, D, d, hidden_sizes, ordering=None, seed=0):
            torch.nn.Module.__init__(self)
            self.D, self.d = D, d
            self.ordering = torch.arange(D) if ordering is None else torch.as_tensor(ordering)
            numbers = numbers_by_a_loop(self.ordering, hidden_sizes, torch.Generator().manual_seed(seed))
            masks = masks_from_numbers(numbers)
            masks[0], masks[-1] = masks[0].repeat_interleave(d, 1), masks[-1].repeat_interleave(d, 0)
            sizes = [D * d, *hidden_sizes, D * d]
            self.layers = torch.nn.ModuleList(
                LayerAsTheNotebook(i, o, m) for i, o, m in zip(sizes[:-1], sizes[1:], masks)
            )

    with pytest.raises(ExerciseFailed, match="where the package's MADE with the same seed"):
        exercises.check_one_hot_made(Made)  # against the package's own numbering
    exercises.check_one_hot_made(Made, numbers_by_a_loop)
    assert capsys.readouterr().out.startswith("OneHotMADE: OK")


def test_the_made_check_takes_a_class_and_says_so():
    with pytest.raises(ExerciseFailed, match=r"check_OneHotMADE takes your class OneHotMADE .* got 3"):
        exercises.check_one_hot_made(3)
    with pytest.raises(ExerciseFailed, match=r"check_MaskedLinear takes your class MaskedLinear"):
        exercises.check_masked_linear(LayerAsTheNotebook(2, 2, torch.ones(2, 2)))


def test_an_unwritten_made_is_named_as_not_written_yet():
    class Stub(torch.nn.Module):
        def __init__(self, D, d, hidden_sizes, ordering=None, seed=0):
            """Stub."""
            raise NotImplementedError

    with pytest.raises(ExerciseFailed, match="OneHotMADE is not written yet"):
        exercises.check_one_hot_made(Stub)


def test_the_equality_with_the_package_reports_what_it_compared():
    same = exercises.compare_with_package(one_hot_made(), 3, 4, [16, 16], ordering=[2, 0, 1], seed=3)
    assert same["ordering"] == [2, 0, 1] and same["inputs"] == 64 and same["samples"] == 10000
    assert same["largest difference"] <= 1e-6 and abs(same["sum of p"] - 1) < 1e-5


def test_the_equality_with_the_package_names_a_model_whose_parameters_do_not_pair_with_the_package():
    with pytest.raises(
        ExerciseFailed, match=r"model.parameters\(\) yields tensors of shapes .*one per mask among them"
    ):
        exercises.compare_with_package(one_hot_made(LayerWithATrainedMask), 2, 3, [8], seed=0)


def q2_a_of(make_model, per_dimension=True, before_training=True, transposed=False):
    def q2_a(train_data, test_data, d, dset_id):
        model = make_model(2, d, [32])
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        test = torch.as_tensor(test_data)
        scale = 2 if per_dimension else 1

        def test_nll():
            with torch.no_grad():
                return float(-model.log_prob(test).mean() / scale)

        steps, curve = [], [test_nll()] if before_training else []
        for _ in range(10):
            for batch in BatchLoader(train_data, 128, shuffle=True):
                loss = -model.log_prob(batch).mean() / scale
                opt.zero_grad()
                loss.backward()
                opt.step()
                steps.append(loss.item())
            curve.append(test_nll())
        grid = torch.cartesian_prod(torch.arange(d), torch.arange(d))
        with torch.no_grad():
            table = model.log_prob(grid).exp().reshape(d, d)
        return steps, curve, (table.T if transposed else table)

    return q2_a


WRONG_Q2_A = [
    (
        q2_a_of(MadeAsSequential, before_training=False),
        "Does test_losses start with the loss before training?",
    ),
    (
        q2_a_of(MadeAsSequential, per_dimension=False),
        "in nats per dimension (the NLL divided by 2)",
    ),
    (
        q2_a_of(MadeAsSequential, transposed=True),
        "but the distribution returned gives the test data a mean NLL",
    ),
]


@pytest.mark.parametrize(
    "wrong, message", WRONG_Q2_A, ids=["no loss before training", "per pair", "transposed"]
)
def test_the_q2_a_check_names_each_breach_of_the_courses_contract(wrong, message):
    with pytest.raises(ExerciseFailed, match="^q2_a") as failure:
        exercises.check_q2_a(wrong)
    assert message in str(failure.value)


@pytest.mark.parametrize("make_model", [MadeAsSequential, one_hot_made()], ids=["sequential", "notebook's"])
def test_the_q2_a_check_passes_a_correct_answer_with_its_own_names_and_loop(make_model, capsys):
    exercises.check_q2_a(q2_a_of(make_model))
    assert capsys.readouterr().out.startswith("q2_a: OK, on 400 pairs (d = 5)")


def numbers_reusing_the_first_hidden_layer(ordering, hidden_sizes, generator=None):
    numbers = connectivity_numbers(ordering, hidden_sizes[:1], generator)
    for size in hidden_sizes[1:]:  # layer 1's numbers again where the width allows
        numbers.append(
            numbers[1] if size == len(numbers[1]) else connectivity_numbers(ordering, [size], generator)[1]
        )
    return numbers


def test_connectivity_numbers_reusing_the_first_hidden_layer_are_caught():
    with pytest.raises(ExerciseFailed, match="the deeper hidden layers repeat hidden layer 1's numbers"):
        exercises.check_connectivity_numbers(numbers_reusing_the_first_hidden_layer)


def test_the_class_checks_leave_the_notebooks_random_state_as_it_was():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    exercises.check_masked_linear(LayerAsTheNotebook)
    exercises.check_one_hot_made(one_hot_made())
    exercises.compare_with_package(one_hot_made(), 2, 3, [8], seed=0)
    assert torch.equal(torch.rand(3), expected)


# --- notebook 4: direct connections, the binary MADE class and q2_b, judged by behaviour --------------------------


def binary_made(
    direct_first=False, add_direct=True, plain_mask=False, strict_direct=True, masked_direct=True
):
    """The notebook's BinaryMADE, or one with a single mistake."""

    class BinaryMADE(torch.nn.Module):
        def __init__(self, D, hidden_sizes, ordering=None, seed=0):
            super().__init__()
            ordering = torch.arange(D) if ordering is None else torch.as_tensor(ordering)
            self.register_buffer("orderings", ordering[None])
            numbers = connectivity_numbers(ordering, hidden_sizes, torch.Generator().manual_seed(seed))
            masks = [m.float() for m in masks_from_numbers(numbers)]
            position = ordering.argsort()
            direct = (
                position[:, None] > position[None, :]
                if strict_direct
                else position[:, None] >= position[None, :]
            )
            if plain_mask:
                self.masks = masks  # not buffers: they stay behind on .to(device)
            else:
                for l, mask in enumerate(masks):
                    self.register_buffer(f"mask{l}", mask)
            self.register_buffer("mask_direct", direct.float() if masked_direct else torch.ones(D, D))
            sizes = [D, *hidden_sizes, D]
            direct = torch.nn.Linear(D, D, bias=False) if direct_first else None  # drawn before the layers
            self.layers = torch.nn.ModuleList(torch.nn.Linear(i, o) for i, o in zip(sizes[:-1], sizes[1:]))
            self.direct = direct if direct_first else torch.nn.Linear(D, D, bias=False)

        def forward(self, x, mask_id=0):
            bits = h = x.float()
            for l, layer in enumerate(self.layers):
                mask = self.masks[l] if plain_mask else getattr(self, f"mask{l}")
                h = F.linear(h, layer.weight * mask, layer.bias)
                if l < len(self.layers) - 1:
                    h = F.relu(h)
            return h + F.linear(bits, self.direct.weight * self.mask_direct) if add_direct else h

        def log_prob(self, x):
            logits = self(x)
            return -F.binary_cross_entropy_with_logits(logits, x.float(), reduction="none").sum(1)

    return BinaryMADE


class MaskedBits(torch.nn.Linear):
    def __init__(self, n_in, n_out, keep, bias=True):
        super().__init__(n_in, n_out, bias=bias)
        self.register_buffer("keep", keep.float())

    def forward(self, h):
        return F.linear(h, self.weight * self.keep, self.bias)


class BinaryMadeWithOtherNames(torch.nn.Module):
    """The same model, other names and structure: a list of masked layers and a skip path; no `mask` attribute."""

    def __init__(self, D, hidden_sizes, ordering=None, seed=0):
        super().__init__()
        order = torch.arange(D) if ordering is None else torch.tensor(ordering)
        self.register_buffer("orderings", order.view(1, D))
        keeps = masks_from_numbers(
            connectivity_numbers(order, hidden_sizes, torch.Generator().manual_seed(seed))
        )
        sizes = [D, *hidden_sizes, D]
        self.stack = torch.nn.ModuleList(MaskedBits(a, b, k) for a, b, k in zip(sizes, sizes[1:], keeps))
        self.skip = MaskedBits(D, D, masks_from_numbers([order.argsort() + 1])[0], bias=False)

    def forward(self, x, mask_id=0):
        h = x.to(torch.float32)
        out = h
        for k, layer in enumerate(self.stack):
            out = layer(out)
            out = out.clamp(min=0) if k + 1 < len(self.stack) else out
        return out + self.skip(h)

    def log_prob(self, x):
        ell = self(x)
        bits = x.to(ell.dtype)
        return (bits * F.logsigmoid(ell) + (1 - bits) * F.logsigmoid(-ell)).sum(-1)


WRONG_BINARY_MADES = [
    (binary_made(add_direct=False), "Add the direct path"),
    (binary_made(direct_first=True), "its initial weights differ from the package's MADE"),
    (binary_made(plain_mask=True), "register it as a buffer"),
    (
        binary_made(strict_direct=False),
        "logit 0 changes when pixel 0 is flipped, but pixel 0 does not come before pixel 0: it reads its own pixel",
    ),
    (
        binary_made(masked_direct=False),
        "each weight multiplied by its mask at every forward pass",
    ),
]


@pytest.mark.parametrize(
    "wrong, message",
    WRONG_BINARY_MADES,
    ids=["no direct path", "direct path first", "plain mask", "direct not strict", "direct unmasked"],
)
def test_the_binary_made_check_names_each_mistake(wrong, message):
    with pytest.raises(ExerciseFailed, match="^BinaryMADE") as failure:
        exercises.check_binary_made(wrong)
    assert message in str(failure.value)


@pytest.mark.parametrize(
    "right", [binary_made(), BinaryMadeWithOtherNames], ids=["notebook's", "other names"]
)
def test_the_binary_made_check_passes_the_notebooks_model_and_one_with_other_names(right, capsys):
    exercises.check_binary_made(right)
    assert capsys.readouterr().out.startswith("BinaryMADE: OK, one logit per pixel")


def q2_b_of(make_model, before_training=True, channel=True, flip=False):
    """A q2_b of its own: its loop, its names, its sampler (x = 1 when u ≥ σ(−ℓ)); optionally with one mistake."""

    def q2_b(train_data, test_data, image_shape, dset_id):
        D = int(np.prod(image_shape))
        data = torch.as_tensor(np.asarray(train_data).reshape(-1, D))
        test = torch.as_tensor(np.asarray(test_data).reshape(-1, D))
        model = make_model(D, [64])
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)

        def nll():
            with torch.no_grad():
                return float(-model.log_prob(test).mean() / D)

        steps, curve = [], [nll()] if before_training else []
        for _ in range(15):
            for batch in BatchLoader(data, 64, shuffle=True):
                loss = -model.log_prob(batch).mean() / D
                opt.zero_grad()
                loss.backward()
                opt.step()
                steps.append(loss.item())
            curve.append(nll())
        u = torch.rand(100, D)
        x = torch.zeros(100, D, dtype=torch.long)
        with torch.no_grad():
            for i in model.orderings[0].tolist():
                x[:, i] = (u[:, i] >= torch.sigmoid(-model(x)[:, i])).long()
        x = 1 - x if flip else x
        return steps, curve, x.view(100, *image_shape, *([1] if channel else [])).numpy()

    return q2_b


@pytest.mark.parametrize(
    "wrong, message",
    [
        (
            q2_b_of(binary_made(), before_training=False),
            "Does test_losses start with the loss before training?",
        ),
        (q2_b_of(binary_made(), channel=False), "returned samples of shape (100, 4, 4), not (100, 4, 4, 1)"),
        (
            q2_b_of(binary_made(), flip=True),
            "of the pixels of its 100 samples are 1, against 27% of the training",
        ),
    ],
    ids=["no loss before training", "no channel axis", "flipped samples"],
)
def test_the_q2_b_check_names_each_breach_of_the_courses_contract(wrong, message):
    with pytest.raises(ExerciseFailed, match="^q2_b") as failure:
        exercises.check_q2_b(wrong)
    assert message in str(failure.value)


def test_the_q2_b_check_passes_a_correct_answer_with_its_own_names_and_loop(capsys):
    exercises.check_q2_b(q2_b_of(BinaryMadeWithOtherNames))
    assert capsys.readouterr().out.startswith("q2_b: OK, on 300 binary 4 x 4 images")


def test_notebook_4s_checks_leave_the_notebooks_random_state_as_it_was():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    exercises.check_direct_mask(direct_mask_by_loops)
    exercises.check_binary_made(binary_made())
    exercises.check_sample_plain(sampler_with_its_own_cdf)
    assert torch.equal(torch.rand(3), expected)
