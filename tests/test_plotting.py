"""Plot files: names taken from features keep their dots."""

from __future__ import annotations

from pathlib import Path

from hepsel import plotting


def test_dots_in_names_do_not_make_plots_collide(tmp_path: Path) -> None:
    written = []
    for feature in ("mu.pt", "mu.eta"):
        fig, ax = plotting.new_figure()
        ax.set_title(feature)
        written += plotting.save(fig, tmp_path / f"shap_dependence_{feature}_bdt")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "shap_dependence_mu.eta_bdt.pdf", "shap_dependence_mu.eta_bdt.png",
        "shap_dependence_mu.pt_bdt.pdf", "shap_dependence_mu.pt_bdt.png",
    ]
    assert sorted(p.name for p in written) == names
