"""The course's harness: it runs an answer of the course's form on the course's splits and refuses wrong forms."""

import numpy as np
import pytest
import torch

from helpers import course


def histogram_answer(train_data, test_data, d, dset_id):
    """The maximum-likelihood histogram, 'trained' in one iteration: the losses in the course's form."""
    p = np.bincount(train_data, minlength=d) / len(train_data)
    test = -np.log(np.maximum(p[test_data], 1e-12)).mean()
    return [np.log(d)], [np.log(d), test], p


def test_q1_results_runs_an_answer_on_the_courses_whole_training_split(capsys, monkeypatch):
    seen = {}

    def answer(train_data, test_data, d, dset_id):
        seen.update(n=len(train_data), d=d, dset_id=dset_id, dtype=train_data.dtype.kind)
        return histogram_answer(train_data, test_data, d, dset_id)

    course.q1_results(1, "a", answer)
    train, test, ds = course.course_splits("1d-1")
    assert seen == dict(n=len(ds.train) + len(ds.valid), d=20, dset_id=1, dtype="i")
    p = np.bincount(train, minlength=20) / len(train)
    assert f"Final Test Loss: {-np.log(p[test]).mean():.4f}" in capsys.readouterr().out


@pytest.mark.parametrize(
    "returned, message",
    [
        (lambda p, d: ([1.0], [1.0], p), "at least 2"),
        (lambda p, d: ([], [1.0, 0.5, 0.4], p), "2 epochs"),
        (lambda p, d: ([1.0], [1.0, float("nan")], p), "not all finite"),
        (
            lambda p, d: ([1.0], [1.0, 0.5], np.log(p + 1e-9)),
            "returned must hold probabilities.*exponentiate",
        ),
        (lambda p, d: ([1.0], [1.0, 0.5], 2 * p), "returned sums to 2, not 1"),
        (lambda p, d: ([1.0], [1.0, 0.5], p[:-1]), "shape"),
        (lambda p, d: (["a"], [1.0, 0.5], p), "the train losses answer returned must be numbers"),
        (lambda p, d: ([1.0], [1.0, None], p), "the test losses answer returned must be numbers"),
    ],
)
def test_q1_results_names_what_is_wrong_with_an_answer(returned, message):
    def answer(train_data, test_data, d, dset_id):
        p = np.full(d, 1 / d)
        return returned(p, d)

    with pytest.raises(ValueError, match=message):
        course.q1_results(1, "a", answer)


def test_q1_results_takes_a_tensor_distribution_as_the_course_code_returns_it(capsys):
    """A student's model returns torch probabilities (with grad): the harness checks and draws them as they are."""

    def answer(train_data, test_data, d, dset_id):
        train, test, p = histogram_answer(train_data, test_data, d, dset_id)
        return train, test, torch.tensor(p, dtype=torch.float32, requires_grad=True)

    course.q1_results(1, "a", answer)
    assert "Final Test Loss" in capsys.readouterr().out


def test_q1_results_takes_the_losses_as_the_tensors_a_training_loop_appends(capsys):
    """`train_losses.append(loss)` without .item(): one-number tensors with grad, read as their values."""

    def answer(train_data, test_data, d, dset_id):
        train, test, p = histogram_answer(train_data, test_data, d, dset_id)
        w = torch.ones((), requires_grad=True)
        return [w * v for v in train], torch.tensor(test), p

    course.q1_results(1, "a", answer)
    expected = histogram_answer(*course.course_splits("1d-1")[:2], 20, 1)[1][-1]
    assert f"Final Test Loss: {expected:.4f}" in capsys.readouterr().out


def test_q2_results_checks_the_samples_form():
    def answer(train_data, test_data, image_shape, dset_id):
        assert train_data.shape[1:] == (*image_shape, 1) and train_data.dtype == np.uint8
        return [1.0], [1.0, 0.5], np.zeros((100, *image_shape))  # the channel axis missing

    with pytest.raises(ValueError, match=r"\(100, 20, 20, 1\)"):
        course.q2_results(1, "b", answer)


def test_q2_results_takes_samples_returned_as_a_tensor(capsys):
    """A student's sampler may return a torch tensor: it is moved to the CPU and checked like an array (the GPU
    case itself needs a device; the tensor-with-grad test above covers the same conversion)."""

    def answer(train_data, test_data, image_shape, dset_id):
        return [1.0], [1.0, 0.5], torch.bernoulli(torch.full((100, *image_shape, 1), 0.5))

    course.q2_results(1, "b", answer)
    assert "Final Test Loss: 0.5000" in capsys.readouterr().out


def test_q2_results_refuses_an_unknown_dataset_or_part():
    with pytest.raises(ValueError, match="dset_id must be 1 or 2"):
        course.q1_results(3, "a", histogram_answer)
    with pytest.raises(ValueError, match="part must be"):
        course.q2_results(1, "c", histogram_answer)


def test_q2_results_part_a_gives_the_pairs_of_the_courses_training_split_and_draws_the_table(capsys):
    def answer(train_data, test_data, d, dset_id):
        assert train_data.shape[1:] == (2,) and d == 25 and dset_id == 1
        p = np.full((d, d), 1 / d**2)
        return [2 * np.log(d)], [np.log(d), np.log(d)], p

    train_losses, test_losses, distribution = course.q2_results(1, "a", answer)
    assert distribution.shape == (25, 25)
    assert f"Final Test Loss: {np.log(25):.4f}" in capsys.readouterr().out


def test_q1_results_takes_a_distribution_returned_as_a_list_of_tensors_with_grad(capsys):
    """`[p[i] for i in range(d)]` of a model's probabilities: read as their values, as the losses are, not a
    RuntimeError from inside np.shape."""

    def answer(train_data, test_data, d, dset_id):
        train, test, p = histogram_answer(train_data, test_data, d, dset_id)
        w = torch.ones((), requires_grad=True)
        return train, test, [w * float(v) for v in p]

    course.q1_results(1, "a", answer)
    assert "Final Test Loss" in capsys.readouterr().out


def test_q1_results_names_a_list_of_tensors_of_the_wrong_length():
    def answer(train_data, test_data, d, dset_id):
        return [1.0], [1.0, 0.5], [torch.tensor(1 / (d - 1), requires_grad=True)] * (d - 1)

    with pytest.raises(ValueError, match=r"answer returned a distribution of shape \(19,\), not \(20,\)"):
        course.q1_results(1, "a", answer)


def test_q1_results_refuses_a_distribution_that_sums_to_1_0009():
    def answer(train_data, test_data, d, dset_id):
        p = np.full(d, 1 / d)
        p[0] += 9e-4
        return [1.0], [1.0, 0.5], p

    with pytest.raises(ValueError, match="returned sums to 1.0009, not 1"):
        course.q1_results(1, "a", answer)
