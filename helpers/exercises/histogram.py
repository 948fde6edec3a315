"""The checks of notebook 1's exercises: the histogram's log-probability from its logits, the training loop and
the course's answer q1_a."""

import numpy as np
import torch

from ..models.histogram import Histogram
from .harness import (
    ExerciseFailed,
    check_1d_answer,
    gradients_match,
    isolated,
    needs_gradient,
    passed,
    prepare,
    same,
    tensor_result,
)


def check_histogram_log_prob(fn):
    """Check histogram_log_prob(logits, x) -> log softmax(logits)_x, a tensor of x's shape."""
    name = "histogram_log_prob"
    exercise, call = prepare(name, fn)
    with isolated():
        d = 6
        logits = (2 * torch.randn(d)).requires_grad_()
        x = torch.tensor([[0, 3, 3], [5, 1, 2]])
        out = tensor_result(name, call(logits, x), x.shape, "one log-probability per example, of x's shape")
        for k, in_batch in zip(x.flatten().tolist(), out.flatten().tolist()):
            alone = float(
                tensor_result(name, call(logits, torch.tensor([k])), (1,), "one log-probability per example")[
                    0
                ].detach()
            )
            if abs(alone - in_batch) > 1e-4:
                raise ExerciseFailed(
                    f"{name}: log p(x = {k}) depends on the other examples in the batch: {alone:.4f} alone, "
                    f"{in_batch:.4f} "
                    f"among x = {x.tolist()}. The softmax is over the wrong axis: normalize over the d categories "
                    f"(the logits' axis), then pick x's entries, not over the examples"
                )
        categories = torch.arange(d)
        log_p = tensor_result(name, call(logits, categories), (d,), "one log-probability per example")
        total = float(log_p.detach().double().exp().sum())
        if abs(total - 1) > 1e-4:
            raise ExerciseFailed(
                f"{name}: the probabilities of the d = {d} categories, by enumeration, sum to {total:.4f}, "
                f"off by {total - 1:+.4f}: p(x) = softmax(θ)_x sums to 1 for any logits θ"
                f"{_what_the_values_are(log_p.detach().double())}"
            )
        expected = exercise.reference(logits, categories)
        same(name, log_p, expected, lambda i: f"x = {i}", "θ_x − logsumexp(θ)")
        needs_gradient(name, log_p, "logits")
        x = torch.tensor(
            [0, 3, 3, 3, 5, 1]
        )  # the gradient pushes θ toward the counts: −N·softmax(θ) + counts
        gradients_match(
            name,
            call(logits, x),
            exercise.reference(logits, x),
            {"logits": logits},
            lambda _: (
                ". If it is the normalizer logsumexp(θ) (a detached logsumexp, or softmax(θ).sum() taken as a "
                "number): its gradient, −softmax(θ) per example, is what lowers the logits of the categories "
                "not observed; keep it in the graph"
            ),
        )
        large = torch.tensor([200.0, 0.0, -200.0, 90.0])
        log_p = tensor_result(name, call(large, torch.arange(4)), (4,), "one log-probability per example")
        same(
            name,
            log_p,
            exercise.reference(large, torch.arange(4)),
            lambda i: f"x = {i}",
            "θ_x − logsumexp(θ)",
            f" at logits {large.tolist()}: exp(θ) overflows float32 above θ ≈ 88 and a probability below 1e-38 "
            f"rounds to 0, so compute θ_x − logsumexp(θ) in log space (torch.log_softmax), never exp(θ) or the "
            f"log of a softmax",
        )
    passed(
        exercise,
        fn,
        f"the probabilities of {d} categories sum to 1 and equal softmax(θ), each independent of "
        f"the batch, finite at logits of ±200, with the gradient to θ of log p (softmax(θ) included)",
    )


def _what_the_values_are(values):
    """What a learner's values of log p(x) over all d categories, which do not normalize, look like instead."""
    if ((values >= 0) & (values <= 1)).all() and abs(float(values.sum()) - 1) < 1e-4:
        return (
            ". Your values themselves sum to 1: they are the probabilities softmax(θ)_x; return their log, "
            "θ_x − logsumexp(θ) (torch.log_softmax)"
        )
    if (values >= 0).all() and abs(float((-values).exp().sum()) - 1) < 1e-4:
        return (
            ". Your values are positive and e^(−value) sums to 1: they are −log p(x), the negative "
            "log-likelihood; return log p(x), which is at most 0 (no minus sign)"
        )
    for base, log in ((2, "torch.log2"), (10, "torch.log10")):
        if abs(float((values * np.log(base)).exp().sum()) - 1) < 1e-4:
            return (
                f". {base}^value sums to 1: your values are logarithms to base {base} ({log}); return the natural "
                f"log, θ_x − logsumexp(θ) (torch.log_softmax), in nats as the loss expects"
            )
    if (values > 0).any():
        return (
            f". Yours reach {float(values.max()):.4g} at x = {int(values.argmax())}, but a log-probability is at "
            f"most 0 (a probability is at most 1): subtract logsumexp(θ) from the logits"
        )
    return ""


def check_train(fn):
    """Check train(model, batches, held_out, epochs, lr) -> (train_losses, held_out_losses) on a tiny histogram:
    the right numbers of losses, the held-out loss before training first and the trained model's last, the
    parameters moved and the loss lowered, the losses of Adam's steps (one per batch) from the same start."""
    name = "train"
    exercise, call = prepare(name, fn)
    with isolated():
        d, epochs, lr = 5, 3, 0.1
        data = torch.tensor([0, 0, 1, 1, 1, 1, 2, 3, 3, 1, 0, 1])
        batches = [data[:4], data[4:8], data[8:]]
        held_out = torch.tensor([0, 1, 1, 3, 2, 1])
        model, reference = Histogram(d), Histogram(d)
        before = model.logits.detach().clone()
        with torch.no_grad():
            first_batch, first_held_out = float(model.loss(batches[0])), float(model.loss(held_out))
        out = call(model, batches, held_out, epochs, lr)
        losses, held = _two_loss_lists(name, out)
        expected_losses, expected_held = exercise.reference(reference, batches, held_out, epochs, lr)
        n_batches = len(batches)
        if len(losses) != epochs * n_batches:
            raise ExerciseFailed(
                f"{name} returned {len(losses)} train losses for {epochs} epochs of {n_batches} batches: the course "
                f"wants one per iteration, the loss of every batch, {epochs * n_batches} here"
                + (
                    ", not one per epoch: append each batch's loss inside the loop over batches"
                    if len(losses) == epochs
                    else ""
                )
            )
        if len(held) != epochs + 1:
            raise ExerciseFailed(
                f"{name} returned {len(held)} held-out losses for {epochs} epochs: the course wants {epochs + 1}, "
                f"the loss before training, then one after each epoch"
                + (
                    ": the one before training is missing, evaluate once before the first epoch"
                    if len(held) == epochs
                    else (
                        ": evaluate after each epoch, not after each batch"
                        if len(held) >= epochs * n_batches
                        else ""
                    )
                )
            )
        if torch.equal(model.logits.detach(), before):
            raise ExerciseFailed(
                f"{name} left the model's parameters as they were: build the optimizer on model.parameters() and "
                f"call its step() after loss.backward() for every batch"
            )
        if abs(held[0] - first_held_out) > 1e-4:
            raise ExerciseFailed(
                f"{name}: held_out_losses[0] is {held[0]:.4f}, but the untrained model's loss on held_out is "
                f"{first_held_out:.4f}: the first held-out loss is measured before any step"
            )
        with torch.no_grad():
            last_held_out = float(model.loss(held_out))
        if abs(held[-1] - last_held_out) > 1e-4:
            raise ExerciseFailed(
                f"{name}: held_out_losses[-1] is {held[-1]:.4f}, but the trained model's loss on held_out is "
                f"{last_held_out:.4f}: after each epoch, evaluate model.loss(held_out) with the current parameters "
                f"(under torch.no_grad())"
            )
        if abs(losses[0] - first_batch) > 1e-4:
            raise ExerciseFailed(
                f"{name}: train_losses[0] is {losses[0]:.4f}, but the first batch's loss before its step is "
                f"{first_batch:.4f}: record each batch's loss as computed for its step (the loss you call "
                f"backward() on), not after the step"
            )
        if not held[-1] < held[0]:
            raise ExerciseFailed(
                f"{name}: the held-out loss went from {held[0]:.4f} to {held[-1]:.4f}: training should lower it on "
                f"this small case; step against the gradient of the loss (minimize model.loss, not its negative)"
            )
        bad = np.flatnonzero(~np.isclose(losses, expected_losses, rtol=1e-4, atol=1e-4))
        if len(bad):
            i = int(bad[0])
            raise ExerciseFailed(
                f"{name}: the loss of batch {i % n_batches} of epoch {i // n_batches + 1} is {losses[i]:.4f}, "
                f"should be {expected_losses[i]:.4f} (Adam, lr = {lr}, one step per batch, from the same start)"
                + _what_the_steps_are(losses, d, batches, epochs, lr)
            )
        bad = np.flatnonzero(~np.isclose(held, expected_held, rtol=1e-4, atol=1e-4))
        if len(bad):
            i = int(bad[0])
            raise ExerciseFailed(
                f"{name}: the held-out loss after epoch {i} is {held[i]:.4f}, should be {expected_held[i]:.4f}: "
                f"evaluate the mean loss of held_out, the data passed for it, after each epoch"
            )
    passed(
        exercise,
        fn,
        f"one loss per batch ({epochs} epochs × {n_batches} batches), the held-out loss before training and after "
        f"each epoch, Adam's steps from the same start, the parameters moved and the loss went down",
    )


def _two_loss_lists(name, out):
    from ..course import checked_loss_curves

    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise ExerciseFailed(
            f"{name} must return two lists, (train_losses, held_out_losses), got "
            f"{type(out).__name__ if not isinstance(out, (tuple, list)) else f'{len(out)} things'}"
        )
    try:
        return checked_loss_curves(out[0], out[1], name)
    except ValueError as error:
        raise ExerciseFailed(f"{name}: {error}") from None


def _what_the_steps_are(losses, d, batches, epochs, lr):
    """What training whose losses are `losses` did instead, when it is a known mistake."""
    model = Histogram(d)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    accumulated = []
    for _ in range(epochs):
        for batch in batches:
            loss = model.loss(batch)
            loss.backward()  # no zero_grad: the gradients of all batches so far add up
            optimizer.step()
            accumulated.append(loss.item())
    if np.allclose(losses, accumulated, rtol=1e-4, atol=1e-4):
        return (
            ". Yours are the losses of steps whose gradients add up over the batches: call "
            "optimizer.zero_grad() before each loss.backward(), since backward() adds to .grad"
        )
    return (
        ". Check that one optimizer, torch.optim.Adam(model.parameters(), lr=lr), is built once before the "
        "epochs (a new one per step forgets Adam's moments), that its gradients are zeroed before each "
        "backward(), and that each batch gets one step"
    )


def check_q1_a(fn):
    """Check q1_a(train_data, test_data, d, dset_id) -> (train_losses, test_losses, distribution), the course's
    contract (`check_1d_answer`)."""
    check_1d_answer("q1_a", fn)
