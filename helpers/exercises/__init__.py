"""Checks for the exercise notebooks (notebooks/exercises): one per function a learner writes.

Each check runs, on the learner's function, the properties this package's own tests rely on (normalization by
enumeration, the autoregressive property of the masks, stability in log space, samples that follow the model),
and says in the model's terms what is wrong and why. A passing check prints one line saying what it verified; a
failing one raises `ExerciseFailed` with that explanation. Something that is not a function, a function with the
wrong parameters, or one that raises gets a message naming the exercise and the expected signature (or, for the
stub's own `raise NotImplementedError`, that it is not written yet). A check handed the package's own function
passes but says so. The checks leave the notebook's state as it was: every random generator a check or the
learner's function may draw from (torch's on the CPU, CUDA and MPS, Python's and numpy's) is restored after each.

`EXERCISES` lists the exercises with the package's own function for each (`reference`), the one a check compares
with and the one the tests fill into the exercise notebooks; the course's answers (q1_a, q1_b), whose settings are
the learner's, have none and are checked by the course's contract alone.
"""

from .harness import EXERCISES, Exercise, ExerciseFailed
from .histogram import check_histogram_log_prob, check_q1_a, check_train
from .logistic_mixture import check_q1_b, check_weighted_component_log_probs
from .made_2d import check_masked_linear, check_one_hot_made, check_q2_a, compare_with_package
from .made_binary import (
    check_bernoulli_log_prob,
    check_binary_made,
    check_direct_mask,
    check_q2_b,
    check_sample_plain,
)
from .made_masks import check_connectivity_numbers, check_masks_from_numbers

__all__ = [
    "EXERCISES",
    "Exercise",
    "ExerciseFailed",
    "check_histogram_log_prob",
    "check_train",
    "check_q1_a",
    "check_weighted_component_log_probs",
    "check_q1_b",
    "check_connectivity_numbers",
    "check_masks_from_numbers",
    "check_masked_linear",
    "check_one_hot_made",
    "compare_with_package",
    "check_q2_a",
    "check_bernoulli_log_prob",
    "check_sample_plain",
    "check_direct_mask",
    "check_binary_made",
    "check_q2_b",
]
