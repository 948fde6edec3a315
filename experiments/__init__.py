"""Long runs whose results the notebooks load: run each from the repository root as a module,
`python -m experiments.made_mnist ...`, `python -m experiments.seed_spread ...`,
`python -m experiments.lr_selection ...`; `results_file` is the locked update of a results file they share."""
