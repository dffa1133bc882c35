"""Be the oracle on images without labels (alcore.engine.labelling): the person names the classes,
labels the audit set, the initial images and every batch; accuracy is measured on the audit set,
with its Wilson interval. Kept in this session's st.session_state like dashboard.oracle_session."""
from __future__ import annotations

import contextlib
import os

import numpy as np
import pandas as pd
import streamlit as st

from alcore import ExperimentConfig
from alcore.analysis.pitfalls import accuracy_interval
from alcore.data.datasets import RawData
from alcore.engine.labelling import AUDIT_DEFAULT, AUDIT_MAX, AUDIT_MIN, LabellingRun, parse_class_names
from alcore.figures import upscale
from alcore.results.records import ResultFileError, RunResult, strategy_label
from alcore.serve.uploads import shown_name
from dashboard import oracle_session as oracle
from dashboard.display import config_caption, plain, show_problems, show_table
from dashboard.label_export import export_buttons
from dashboard.limits import deployment_limits, one_call_within_labels
from dashboard.state import race_lock, trainer_cache
from dashboard.uploads import download_json, refuse, result_uploads, session_folder

RUN = "labelling_run"
IMAGE_PX = 144
PHASES = {"audit": "Audit set", "initial": "Initial images", "rounds": "Batch"}


@st.cache_resource(max_entries=2, show_spinner="Reading your images...")
def _images(path: str, size: int, _mtime: int, image_limits) -> RawData | None:
    from alcore.data.images import load_images

    images = load_images(path, size, limits=image_limits)
    return None if images.labeled else images.raw


def upload_images(cfg: ExperimentConfig) -> RawData:
    """The images without labels of the .zip ``cfg`` names (this session's upload), read within this
    server's limits and shared read-only; a ValueError says why they cannot be had, without a path."""
    if problems := deployment_limits().path_problems(cfg, session_folder()):
        raise ValueError("; ".join(problems))
    name = shown_name(cfg.data_file)
    try:
        images = _images(cfg.data_file, cfg.image_size, os.stat(cfg.data_file).st_mtime_ns,
                         deployment_limits().image_limits())
    except OSError as e:  # its text holds the path
        raise ValueError(f"{name} cannot be read on this server: upload it again") from e
    if images is None:
        raise ValueError(f"{name} holds labelled images (class folders or a labels CSV), not images without labels")
    return images


def unlabeled_images(cfg: ExperimentConfig) -> RawData | None:
    """The images of an upload without labels (the Dataset page's .zip), else None."""
    if cfg.dataset != "images" or not cfg.data_file:
        return None
    from alcore.data.images import load_report

    report = load_report(cfg.data_file, cfg.image_size)
    if report is not None and report[0] != "images without labels":
        return None  # a labeled upload, loaded already: no second decoding
    try:
        return upload_images(cfg)
    except ValueError:
        return None  # the Dataset page says why (a path it may not read included)


def _open(cfg: ExperimentConfig, make, n_pool: int, trains: int = 0) -> bool:
    """Make ``make()`` this session's labelling run, within the server's limits (its pool: ``n_pool``;
    ``trains``: the labels a round it replays trains on, holding a run slot then)."""
    limits = deployment_limits()
    problems = limits.run_problems(cfg, [cfg.strategy], 1)
    if limits.max_pool_size is not None and n_pool > limits.max_pool_size:
        problems.append(f"your upload leaves {n_pool:,} images to pick from besides the audit set; this server "
                        f"allows at most {limits.max_pool_size:,} pool images: upload fewer")
    if problems:
        show_problems(problems)
        return False
    with one_call_within_labels(trains, f"Training on the file's {trains:,} labels", "start a run with fewer "
                                "labels") if trains else contextlib.nullcontext(True) as ok:
        if not ok:
            return False
        try:
            with race_lock(), st.spinner("Opening the run (a file's last round is trained again)..."):
                st.session_state[RUN] = make()
        except (ValueError, ResultFileError) as e:
            refuse(e)
            return False
    st.session_state.pop(oracle.ANSWERS, None)
    return True


def _in_the_loop(result: RunResult, name: str) -> None:
    if not result.labelled_in_the_loop:
        raise ResultFileError(f"{name}: {result.label} is not a run on images without labels")


def setup(cfg: ExperimentConfig, strategies, images: RawData) -> None:
    """Classes, audit size, strategy; start, or continue from a result file."""
    run: LabellingRun | None = st.session_state.get(RUN)
    with st.container(border=True):
        c1, c2, c3 = st.columns([3, 1, 2])
        text = c1.text_input("Your classes, comma-separated", key="labelling_classes", placeholder="cat, dog, bird",
                             help="Keys 1-9 and 0 label with the first ten classes, in this order.")
        most = min(AUDIT_MAX, len(images.x_train) - cfg.first_round_labels() - cfg.batch_size)  # leave a batch
        if most < AUDIT_MIN:
            st.error(f"{len(images.x_train):,} images are too few: the audit set takes at least {AUDIT_MIN}, and "
                     f"{cfg.first_round_labels() + cfg.batch_size} more are the initial images and one batch.")
            return
        audit = c2.number_input("Audit set", AUDIT_MIN, most, min(AUDIT_DEFAULT, most), key="labelling_audit",
                                help="Images drawn at random that you label first: the accuracy is measured on them. "
                                     "No strategy picks them and no model trains on them.")
        strategy = c3.selectbox("Strategy that asks", list(strategies), key="labelling_strategy",
                                format_func={s: strategy_label(cfg.replace(strategy=s)) for s in strategies}.__getitem__)
        st.caption(f"{len(images.x_train):,} images without labels · " + config_caption(cfg.replace(strategy=strategy)))
        try:
            names = parse_class_names(text) if text.strip() else None
        except ValueError as e:
            st.error(plain(e), icon=":material/warning:")
            names = None
        b1, b2 = st.columns([1, 4])
        go = b1.button("Start over" if run else "Start labelling", key="labelling_start", disabled=names is None,
                       type="secondary" if run else "primary")
        with b2.expander("Continue labelling from a result file", icon=":material/upload_file:"):
            mine = result_uploads("Your run's result file (JSON)", key="labelling_file", multiple=False,
                                  check=_in_the_loop)
            again = st.button("Continue this run", key="labelling_reopen", disabled=not mine.uploaded)
    oc = cfg.replace(strategy=strategy)
    n_pool = len(images.x_train) - int(audit)
    if go and _open(oc, lambda: LabellingRun(oc, images, names, int(audit), cache=trainer_cache()), n_pool):
        st.rerun()
    if again and mine.runs:
        # the images are this upload's (the resume checks they are the same): its path, not the file's
        mine_now = mine.runs[0].model_copy(update={"config": mine.runs[0].config.replace(data_file=cfg.data_file)})
        if _open(mine_now.config, lambda: LabellingRun.resume(mine_now, images, cache=trainer_cache()),
                 mine_now.dataset.n_pool, mine_now.rounds[-1].n_labeled):
            st.rerun()


def submit_if_requested(run: LabellingRun) -> None:
    if not st.session_state.pop(oracle.SUBMIT, False):
        return
    answers = st.session_state.get(oracle.ANSWERS)
    if answers is None or answers.indices != run.batch.tolist() or not answers.complete:
        return
    labels = run.person.n_labeled if run.person is not None else run.config.first_round_labels()
    with one_call_within_labels(labels, f"Training on {labels:,} labels", "start over with a smaller setup") as ok:
        if ok:
            with race_lock(), st.spinner("Recording your labels (and training, where a batch is complete)..."):
                run.submit(answers)
            st.session_state.pop(oracle.ANSWERS, None)


def progress(run: LabellingRun) -> None:
    """The audit-set accuracy per round with its Wilson interval; labels spent on the audit."""
    audit_done = len(run.audit_labels)
    trained = run.person.n_labeled if run.person and run.person.rounds else 0
    st.sidebar.caption(f"**Labelling:** {audit_done} of {run.n_audit} audit labels given (never trained on); "
                       f"{trained} labels trained on.")
    rounds = run.person.rounds if run.person else []
    m1, m2, m3 = st.columns(3)
    m1.metric("Audit labels", f"{audit_done} of {run.n_audit}", help="Spent on measuring, not training.")
    m2.metric("Labels trained on", trained)
    if rounds:
        acc = rounds[-1].test_accuracy
        lo, hi = accuracy_interval(acc, run.n_audit)
        m3.metric("Accuracy on the audit set", f"{acc:.1%}", help="The latest round's model on the audit set.")
        st.caption(f"95% Wilson interval {lo:.1%} to {hi:.1%} ({run.n_audit} audit images): with an audit set "
                   "this small, differences inside it are noise.")
        table = [dict(round=r.round, labels=r.n_labeled, accuracy=r.test_accuracy,
                      low=accuracy_interval(r.test_accuracy, run.n_audit)[0],
                      high=accuracy_interval(r.test_accuracy, run.n_audit)[1]) for r in rounds]
        pct = st.column_config.NumberColumn(format="percent")
        show_table(pd.DataFrame(table), "labelling_audit_accuracy",
                   column_config={"accuracy": pct, "low": pct, "high": pct})
        res, rc = run.result(), run.config
        stem = f"images_{rc.strategy}_seed{rc.seed}_labelled"
        st.download_button("Download your run's result file (JSON)", download_json(res), f"{stem}.json", "application/json",
                           on_click="ignore", key="labelling_download", icon=":material/download:")
        export_buttons(res, run.dataset, stem, "labelling_labels")


def _keys(n: int) -> list[str]:
    return [str((c + 1) % 10) for c in range(min(n, 10))]


@st.fragment
def batch_area(run: LabellingRun) -> None:
    """The waiting batch with a label button per class; keys label the first open image."""
    if st.session_state.get(oracle.SUBMIT):
        st.rerun(scope="app")
    answers = oracle.answers_for(run)
    batch, phase = tuple(answers.indices), run.phase
    names = [plain(n) for n in run.class_names]
    keys = _keys(len(names))
    step = len(run.person.rounds) if run.person is not None and run.person.rounds else 0
    title = {"audit": f"Audit set: images {len(run.audit_labels) + 1}-{len(run.audit_labels) + len(batch)} of "
                      f"{run.n_audit}", "initial": "Initial images: the model's first training labels",
             "rounds": f"Batch {step}: the model asks about these"}[phase]
    st.subheader(title)
    st.caption("Keyboard: " + ", ".join(f"**{k}** {n}" for k, n in zip(keys, names)) + " label the image marked "
               ":material/arrow_right_alt:, **Enter** submits. Click a label to correct one.")
    target = answers.next_open
    tag = f"{phase}_{step}_{batch[0] if batch else 0}"
    with st.container(horizontal=True, gap="small", key="labelling_keys"):
        st.markdown("Keys:")
        for c, k in enumerate(keys):
            # the button shows its shortcut after the name ("ant 1"), as the digits page's key row does
            st.button(names[c], key=f"labelling_key_{tag}_{c}", on_click=oracle.give_next, args=(batch, c),
                      type="tertiary", shortcut=k, disabled=target is None)
    pictures = upscale(run.dataset.display_images(run.batch_images()), IMAGE_PX)
    files = run.batch_files() or [""] * len(batch)
    for pos in range(len(batch)):
        given = answers.labels[pos]
        with st.container(border=True, horizontal=True, vertical_alignment="center", key=f"labelling_item_{pos}"):
            st.image(np.asarray(pictures[pos]), width=IMAGE_PX)
            with st.container():
                mark = ":material/arrow_right_alt: " if pos == target else ""
                said = f" · you said **{names[given]}**" if given is not None else ""
                st.markdown(f"{mark}Image {pos + 1} of {len(batch)}{said}")
                if files[pos]:
                    st.caption(plain(files[pos]), help="The file in your zip.")
                with st.container(horizontal=True, gap="small"):
                    for c, name in enumerate(names):
                        st.button(name, key=f"labelling_label_{tag}_{pos}_{c}", on_click=oracle.give,
                                  args=(batch, pos, c), type="primary" if given == c else "secondary")
    trains = phase == "rounds" or (phase == "initial" and len(run._first) + len(batch) == len(run._first_indices()))
    st.button("Submit labels and retrain" if trains else "Submit labels", type="primary", key="labelling_submit_button", on_click=oracle.request_submit,
              disabled=not answers.complete, shortcut="Enter" if answers.complete else None)
    st.caption(f"{answers.n_answered} of {len(batch)} labelled.")


def show(cfg: ExperimentConfig, strategies, images: RawData) -> None:
    """The whole page for images without labels."""
    st.markdown("Your images have **no labels**: you are the oracle for all of them. Name your classes, then "
                "label a random **audit set** (the accuracy is measured on it, never trained on), the initial "
                "images, and every batch the model asks about.")
    setup(cfg, strategies, images)
    run: LabellingRun | None = st.session_state.get(RUN)
    if run is None:
        return
    rc = run.config
    if (rc.data_file, rc.image_size) != (cfg.data_file, cfg.image_size):
        st.warning("This labelling run is on another upload or image size than the Dataset page's now: "
                   "**Start over** to label these images.", icon=":material/warning:")
    with race_lock():
        pass
    submit_if_requested(run)
    progress(run)
    if run.done:
        st.success(f"The run is complete ({plain(run.person.stop_reason)}). Download it above.", icon=":material/flag:")
    else:
        batch_area(run)
