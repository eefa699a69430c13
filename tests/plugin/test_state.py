"""The state's events are psygnal signals; a user error raised by a listener reaches the caller as itself."""

import pytest
from psygnal import EmitLoopError, SignalGroup

from topoviewer.errors import TopoviewerError
from topoviewer_napari.state import TopoState


def test_events_are_a_psygnal_group_and_slots_run_synchronously():
    st = TopoState()
    assert isinstance(st.events, SignalGroup)
    assert set(st.events.signals) == {"model_changed", "analysis_changed", "early_changed", "category_changed",
                                      "voxel_t_changed",
                                      "activations_changed", "stimulated", "log_changed", "busy",
                                      "stim_radius_changed"}
    seen = []
    st.events.busy.connect(lambda *args: seen.append(args))
    st.report("images", 2, 5, "forward pass")
    assert seen == [("images", 2, 5, "forward pass")]
    st.events.disconnect()
    st.report("images", 3, 5, "forward pass")
    assert len(seen) == 1


def test_a_user_error_in_a_listener_is_one_topoviewer_error_for_the_caller():
    st = TopoState()

    def refuse(state):
        raise TopoviewerError("this listener refuses the change")

    st.events.log_changed.connect(refuse)
    with pytest.raises(TopoviewerError, match="^this listener refuses the change$") as info:
        st.clear_log()  # emits log_changed
    assert not isinstance(info.value, EmitLoopError)


def test_a_bug_in_a_listener_stays_a_psygnal_error_naming_the_signal():
    st = TopoState()

    def broken(state):
        raise ZeroDivisionError("a bug, not a user error")

    st.events.log_changed.connect(broken)
    with pytest.raises(EmitLoopError, match="log_changed") as info:
        st.clear_log()
    assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_cli_gui_and_figure_give_one_purity_curve_on_a_channel_grid(tmp_path, capsys):
    """toponet_small (one unit per grid cell): the CLI summary, the GUI state and the figure's curve agree."""
    import json

    import numpy as np
    import torch

    from topoviewer.cli import main
    from topoviewer.families import build
    from topoviewer.io import save_model
    from topoviewer.pipeline import analyze, default_stimuli

    torch.manual_seed(0)
    model = build("toponet_small", {"widths": [8, 8, 64, 64]})
    path = save_model(model, tmp_path / "grid.safetensors")
    assert main(["analyze", str(path), "--json", "--out", str(tmp_path / "res")]) == 0
    cli = json.loads(capsys.readouterr().out)["sheets"]
    stimuli = default_stimuli(model)
    st = TopoState()
    st.set_model(model, stimuli=stimuli)
    st.set_analysis(analyze(model, stimuli), stimuli)
    for sheet in st.analysis.sheets:
        gui = st.purity(sheet, "faces")
        assert gui is not None and cli[sheet]["purity_curve"]["centre_mm"] == list(gui.centre)
        np.testing.assert_allclose(np.array(cli[sheet]["purity_curve"]["purity"], float), gui.purity)
        # the figure draws SheetMaps.purity with the same threshold: the very object the state returns
        assert st.analysis.sheets[sheet].purity("faces", st.threshold) is gui


def test_early_maps_come_from_gratings_and_go_with_the_model(tiny_model):
    import dataclasses

    from topoviewer.pipeline import analyze
    from topoviewer.stimuli import gratings

    st = TopoState()
    st.set_model(tiny_model, "tiny")
    early = analyze(tiny_model, gratings(size=32, sf_cpi=[2, 3, 4, 6, 8], phases=2, hues=()))
    with pytest.raises(TopoviewerError, match="^early visual maps come from an analysis on gratings$"):
        st.set_early(dataclasses.replace(early, sheets={n: dataclasses.replace(m, early=None)
                                                        for n, m in early.sheets.items()}))
    seen = []
    st.events.early_changed.connect(seen.append)
    st.set_early(early)
    assert seen == [st] and st.early is early
    st.set_model(tiny_model, "again")
    assert st.early is None


def test_gui_guide_names_every_stimulation_log_column():
    import re
    from pathlib import Path

    from topoviewer_napari.state import LOG_FIELDS

    guide = (Path(__file__).resolve().parents[2] / "docs" / "gui.md").read_text()
    block = guide[guide.index("**Stimulation log (CSV)**"):]
    block = block[: block.index("\n\n")]
    assert re.findall(r"`([a-z_]+)`", block) == list(LOG_FIELDS)
