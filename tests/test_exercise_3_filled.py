"""Notebook 3's exercise filled in by a learner runs its main line end to end on the learner's MADE and gives the
solution's answers within the spread of the recipe over training seeds (minibatch training: unlike notebooks 1 and 2,
see test_exercises_filled.py, another machine's rounding may move the last digits)."""

import json

import numpy as np
from test_exercises_filled import ROOT, final_test_losses, run_filled

LEARNER_NOTEBOOK_3 = {
    "connectivity_numbers": """
def connectivity_numbers(ordering, hidden_sizes, generator=None):
    \"\"\"Mine: the positions by scattering 1..D into the ordering's slots, then one draw per hidden layer.\"\"\"
    order = torch.as_tensor(ordering)
    n_dims = order.numel()
    position = torch.zeros(n_dims, dtype=torch.long)
    position[order] = torch.arange(1, n_dims + 1)
    result = [position]
    for width in hidden_sizes:
        result.append(torch.randint(int(result[-1].min()), n_dims, (width,), generator=generator))
    return result
""",
    "masks_from_numbers": """
def masks_from_numbers(numbers):
    \"\"\"Mine: differences of numbers, above minus below, kept where >= 0 (hidden) or > 0 (outputs).\"\"\"
    out = [((hi.unsqueeze(1) - lo.unsqueeze(0)) >= 0).to(torch.uint8) for lo, hi in zip(numbers, numbers[1:])]
    out.append(((numbers[0].unsqueeze(1) - numbers[-1].unsqueeze(0)) > 0).to(torch.uint8))
    return out
""",
    "MaskedLinear": """
class MaskedLinear(nn.Linear):
    \"\"\"Mine: the mask kept as the buffer `keep`.\"\"\"

    def __init__(self, in_features, out_features, mask):
        super().__init__(in_features, out_features)
        self.register_buffer("keep", mask.to(torch.float32))

    def forward(self, x):
        return F.linear(x, self.keep * self.weight, self.bias)
""",
    "OneHotMADE": """
class OneHotMADE(nn.Module):
    \"\"\"Mine: an nn.Sequential of masked layers and ReLUs, log p by cross-entropy, the draw by searchsorted.\"\"\"

    def __init__(self, D, d, hidden_sizes, ordering=None, seed=0):
        super().__init__()
        self.n_dims, self.n_values = D, d
        self.order = list(range(D)) if ordering is None else [int(i) for i in ordering]
        masks = masks_from_numbers(
            connectivity_numbers(torch.tensor(self.order), hidden_sizes, torch.Generator().manual_seed(seed))
        )
        masks[0] = masks[0].repeat_interleave(d, dim=1)    # d one-hot input units per dimension
        masks[-1] = masks[-1].repeat_interleave(d, dim=0)  # d logits per dimension
        widths = [D * d, *hidden_sizes, D * d]
        parts = []
        for k, mask in enumerate(masks):
            parts.append(MaskedLinear(widths[k], widths[k + 1], mask))
            if k + 1 < len(masks):
                parts.append(nn.ReLU())
        self.net = nn.Sequential(*parts)

    def forward(self, x):
        one_hot = F.one_hot(x, self.n_values).float().reshape(x.shape[0], -1)
        return self.net(one_hot).reshape(x.shape[0], self.n_dims, self.n_values)

    def log_prob(self, x):
        return -F.cross_entropy(self(x).permute(0, 2, 1), x, reduction="none").sum(dim=1)

    @torch.no_grad()
    def sample(self, n, u=None):
        if u is None:
            u = torch.rand(n, self.n_dims)
        x = torch.zeros(n, self.n_dims, dtype=torch.long, device=u.device)
        for i in self.order:
            cdf = self(x)[:, i].softmax(dim=-1).cumsum(dim=-1).contiguous()
            k = torch.searchsorted(cdf, u[:, i].unsqueeze(1).contiguous(), right=True).squeeze(1)
            x[:, i] = k.clamp(max=self.n_values - 1)
        return x
""",
    "q2_a": """
def q2_a(train_data, test_data, d, dset_id):
    \"\"\"Mine: the settings unpacked, my own loop, the table from every pair.\"\"\"
    lr, batch_size, n_epochs = (SETTINGS[dset_id][k] for k in ("lr", "batch_size", "epochs"))
    where = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    seed(0)
    made = OneHotMADE(2, d, HIDDEN_SIZES).to(where)
    adam = torch.optim.Adam(made.parameters(), lr=lr)
    held_out = torch.as_tensor(test_data).to(where)

    def per_dim_nll(pairs):
        return -made.log_prob(pairs).mean() / 2

    shuffled = BatchLoader(train_data, batch_size, shuffle=True, seed=0)   # a new order each epoch
    steps = []
    with torch.no_grad():
        curve = [per_dim_nll(held_out).item()]
    for _ in range(n_epochs):
        for pairs in shuffled:
            nll = per_dim_nll(pairs.to(where))
            adam.zero_grad()
            nll.backward()
            adam.step()
            steps.append(nll.item())
        with torch.no_grad():
            curve.append(per_dim_nll(held_out).item())
    x0, x1 = torch.meshgrid(torch.arange(d), torch.arange(d), indexing="ij")
    with torch.no_grad():
        table = made.log_prob(torch.stack([x0.flatten(), x1.flatten()], 1).to(where)).exp().reshape(d, d)
    return np.array(steps), np.array(curve), table.cpu().numpy()
""",
}


def test_notebook_3_filled_with_a_learners_own_made_runs_its_main_line_and_gives_the_solutions_answers():
    """The learner's numbers, masks, layer, MADE (an nn.Sequential with other names, log p by cross-entropy, the draw
    by searchsorted) and q2_a (its own loop) pass every check, equal the package's model (the equality cell), and
    q2_a's final test losses are the solution's within the five-seed spread of the same recipe
    (experiments/seed_spread.py): the learner's model starts from the same weights and sees the same batches, so
    only rounding may differ. The main line only: the side studies train the package's models."""
    exercise, solution = run_filled("03_made_2d.ipynb", LEARNER_NOTEBOOK_3, only_main_line=True)
    expected, got = final_test_losses(solution), final_test_losses(exercise)
    spread = json.loads((ROOT / "experiments" / "seed_spread" / "results.json").read_text())
    width = {name: np.ptp(spread[f"{name} one-hot"]["test_loss"]) for name in ("smiley", "hinton")}
    # fit's runs of the package's MADE (smiley, Hinton), then q2_a's of the learner's (smiley, Hinton)
    assert len(expected) == len(got) == 4, (got, expected)
    for g, e, name in zip(got, expected, ("smiley", "hinton") * 2):
        assert abs(g - e) <= max(width[name], 1e-4), (name, got, expected, width)
