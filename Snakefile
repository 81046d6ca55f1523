# hepsel workflow: generate (if data are missing) -> prepare (one job per input
# file) -> gather -> train (one job per model and fold) -> evaluate -> plots.
#
#   snakemake --cores 2                                      # default analysis
#   snakemake --cores 8 --config analysis=analyses/<name>    # another one
#   snakemake --cores 2 --config output=/tmp/out             # results elsewhere
#
# Rules only call the hepsel command line; all logic lives in the package.
#
# Reruns: each rule's `settings` param is a digest of exactly the config
# settings its step reads (hepsel.config.provenance), so Snakemake's default `params`
# trigger reruns the jobs a config edit affects, and `mtime` their downstream.
# Remote inputs (root://, http(s)://) are read in place and are no rule inputs:
# their URL joins the `settings` param of prepare (a params rerun when the URL at
# an index changes); a file changed on the server is not seen (README).
import functools
import json
import re
import shlex
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

from hepsel.config.loading import load_config
from hepsel.config.provenance import check_output_owner, claim_output, function_modules, step_digest, step_settings
from hepsel.exceptions import HepselError
from hepsel.io.remote import is_url
from hepsel.io.storage import check_writable_dir
from hepsel.workflow.fidelity_step import gan_models
from hepsel.workflow.layout import Layout
from hepsel.workflow.report_steps import headline

ANALYSIS = config.get("analysis", "analyses/topo2body")
_overrides = {"output": config["output"]} if config.get("output") else None
try:
    CFG = load_config(ANALYSIS, overrides=_overrides)
    check_output_owner(CFG)  # a copied config must not overwrite another analysis's results
    check_writable_dir(CFG.output_dir)  # '-o' under a regular file, read-only, /proc: one line, not a traceback
except HepselError as _err:
    # the message names the file and key; Snakemake's traceback around it would only hide it
    sys.exit(f"hepsel: error: {_err}")
LAY = Layout.of(CFG)
MODULES = [str(p) for p in function_modules(CFG)]
try:
    # generated files another analysis made with other settings: refused before Snakemake
    # would delete them to regenerate (files made with equal settings are shared)
    for _sample, _scfg in CFG.samples.items():
        if _scfg.generate is not None:
            from hepsel.sim.generate import check_generated

            check_generated(_scfg.generate, CFG.sample_files(_sample), source=CFG.source)
    # globs expanded once (on the server for root:// patterns): a pattern matching nothing or a
    # server that cannot list it is one line, not a traceback
    FILES = {s: [str(p) for p in CFG.sample_files(s)] for s in CFG.samples}
except HepselError as _err:
    sys.exit(f"hepsel: error: {_err}")


def digest(step, **kw):
    return step_digest(CFG, step, **kw)


onstart:
    claim_output(CFG)


onsuccess:
    # the headline figures and where the report is, so a run ends with its result
    _headline = headline(CFG)
    if _headline is not None:
        print(_headline)

ROOT = str(LAY.root)
BENCH = f"{ROOT}/benchmarks"  # one time/memory record per job, tabulated in benchmarks.json by the report rule


# Resources of each job, sized from the benchmark: files (max_rss, s) of the default
# analysis (data set 16 MB) and of a 30x run (490 MB): a fixed part plus a
# part per MB of dataset.parquet, with headroom. A cluster profile turns them into
# the batch system's requests (sbatch --mem, -t); a retried job asks for twice as much.
def _data_mb(input):
    """Size of the prepared data set in MB (the inputs' size before gather has run)."""
    dataset = Path(ROOT) / "dataset.parquet"
    return dataset.stat().st_size / 1e6 if dataset.exists() else input.size_mb


def mem_mb(base, per_mb=0.0, per_thread=0.0, per_thread_mb=0.0):
    """MB of memory, times the attempt: ``base`` plus ``per_mb`` per MB of data set, plus for
    each thread (a process each) ``per_thread`` and ``per_thread_mb`` per MB of data set."""

    def request(wildcards, input, threads, attempt):
        data = _data_mb(input)
        return int((base + per_mb * data + threads * (per_thread + per_thread_mb * data)) * attempt)

    return request


def runtime(base, s_per_mb=0.0, rounds_of=1):
    """Minutes of wall time: ``base`` plus ``s_per_mb`` seconds per MB of data set, times the
    attempt; a job whose threads work through ``rounds_of`` tasks takes as many rounds as each
    thread has tasks in turn."""

    def request(wildcards, input, threads, attempt):
        rounds = -(-rounds_of // max(threads, 1))
        return int((base + s_per_mb * _data_mb(input) / 60) * rounds * attempt) + 1

    return request


MODELS = list(CFG.models)
FOLDS = list(range(CFG.folds.k))
HEPSEL = f"{shlex.quote(sys.executable)} -m hepsel.cli"
COMMON = f"--config {shlex.quote(str(ANALYSIS))}" + (f" --output {shlex.quote(ROOT)}" if _overrides else "")

wildcard_constraints:
    sample="|".join(CFG.samples),
    index=r"\d{3}",
    model="|".join(MODELS),
    fold=r"\d+",

# offline studies (no trigger block) have no rate curves
_RATE_PLOTS = ("eff_vs_rate", "eff_vs_rate_tos") if CFG.trigger is not None else ()
PLOTS = [f"{ROOT}/plots/{p}.png" for p in ("roc", *_RATE_PLOTS, "cutflow")] + [
    f"{ROOT}/plots/scores_{m}.png" for m in MODELS
]


# optional steps, each with its switch: SHAP values (evaluation.shap.enabled), the "why"
# explanations (explain.enabled), the report (report.enabled)
if CFG.evaluation.shap.enabled:
    from hepsel.workflow.explain_steps import explainable_models

    EXPLAINED = explainable_models(CFG)
else:
    EXPLAINED = []
WHY = MODELS if CFG.explain.enabled else []
REPORT = [f"{ROOT}/report.html"] if CFG.report.enabled else []
GANS = gan_models(CFG)
# the robustness study (config `robustness:`) joins the default target when configured
ROBUSTNESS = [f"{ROOT}/robustness.json", f"{ROOT}/plots/robustness.png"] if CFG.robustness is not None else []
def study_points(wildcards=None):
    """The augmentation study's points (an input function: worked out only for the study target)."""
    from hepsel.workflow.study import study_models

    return [
        f"{ROOT}/study/{m}_{n}_{s}.json"
        for m in study_models(CFG) for n in CFG.study.n_real for s in CFG.study.seeds
    ]


# the trigger menu (config `menu:`): one event-score job per line, then the bandwidth division
MENU_LINES = list(CFG.menu.lines) if CFG.menu is not None else []
if MENU_LINES:
    from hepsel.workflow.menu_plots_step import MENU_PLOTS
MENU = [f"{ROOT}/menu.json", *(f"{ROOT}/plots/{p}.png" for p in MENU_PLOTS)] if MENU_LINES else []
# the DisCo strength scan runs only with a decorrelation_scan block
SCAN = [f"{ROOT}/decorrelation/scan.json"] if CFG.decorrelation_scan is not None else []


rule all:
    input:
        f"{ROOT}/summary.json",
        f"{ROOT}/scores.root",
        PLOTS,
        REPORT,
        [f"{ROOT}/fidelity/{m}.json" for m in GANS],
        SCAN,
        ROBUSTNESS,
        MENU,


# Application of the trained selection (config `apply:`): snakemake --cores 2 apply
# hepsel's own outputs among the files are skipped, and no output may be an input;
# worked out once, and only when an apply job is asked for
@functools.cache
def apply_jobs():
    from hepsel.deploy.apply import dataset_jobs

    try:
        jobs, skipped = dataset_jobs(CFG)
    except HepselError as err:  # a glob matching nothing only matters for the apply target
        sys.exit(f"hepsel: error: {err}")
    for path, why in skipped:
        print(f"hepsel: skipping {str(path)!r}: {why}", file=sys.stderr)
    return {d: [str(i) for i, _ in js] for d, js in jobs.items()}, [str(o) for js in jobs.values() for _, o in js]


def apply_outputs(wildcards=None):
    if not CFG.apply.datasets:
        sys.exit(f"hepsel: error: {CFG.source}: no 'apply: datasets:' block; nothing to apply")
    return apply_jobs()[1]


rule apply:
    input:
        apply_outputs,


def _local(path):
    # remote inputs (root://, http(s)://) are read in place: no local file for Snakemake to wait for
    return [] if is_url(path) else [path]


def _remote(path):
    # the URL of a remote input, for the params trigger (its contents on the server are not watched)
    return path if is_url(path) else ""


rule apply_file:
    input:
        data=lambda wc: _local(apply_jobs()[0][wc.dataset][int(wc.index)]),
        selection=f"{ROOT}/selection/selection.json",
        menu=[f"{ROOT}/selection/menu.json"] if CFG.menu is not None else [],
    output:
        f"{ROOT}/apply/{{dataset}}/{{index}}/{{stem}}_hepsel.root",
    wildcard_constraints:
        dataset=r"[A-Za-z0-9_-]+",
        stem=r"[^/]+",
    log:
        f"{ROOT}/logs/apply/{{dataset}}_{{index}}_{{stem}}.log",
    benchmark:
        f"{BENCH}/apply_file/{{dataset}}_{{index}}_{{stem}}.tsv"
    params:
        settings=lambda wc: digest("apply", sample=wc.dataset),
        tree=lambda wc: f"--tree {shlex.quote(CFG.apply.datasets[wc.dataset].tree)}" if CFG.apply.datasets[wc.dataset].tree else "",
        models=" ".join(f"--model {shlex.quote(m)}" for m in CFG.apply.models),
        copy_branches="--copy-branches" if CFG.apply.copy_branches else "",
        data=lambda wc: apply_jobs()[0][wc.dataset][int(wc.index)],
    threads: 1
    resources:
        mem_mb=mem_mb(1000),  # one input file, read in chunks
        runtime=runtime(20),
    shell:
        f"{HEPSEL} apply --selection {shlex.quote(ROOT + '/selection')} {{params.data:q}} -o $(dirname {{output:q}}) "
        "{params.tree} {params.models} {params.copy_branches} --no-progress 2>&1 | tee {log}"


# The augmentation study is a separate target: snakemake --cores 2 study
rule study:
    input:
        f"{ROOT}/study/augmentation.json",


def _generated_file_index(files):
    """Position of a generated file among its sample's files (a function of ``output``: no rerun trigger)."""
    names = [Path(f).name for f in files]
    return lambda wildcards, output: names.index(Path(output[0]).name)


# Generated samples: one job per file (rule generate_<sample>_file; a file's events do not
# depend on the others), so that generation fans out over the cores or the cluster; the
# target generate_<sample> asks for all of a sample's files. A sample whose files lie in
# several directories is generated by one job, rule generate_<sample>.
for _sample, _scfg in CFG.samples.items():
    if _scfg.generate is None:
        continue
    _dirs = sorted({str(Path(f).parent) for f in FILES[_sample]})
    _one_dir = len(_dirs) == 1
    _wildcard = f"generated_{_sample}"

    rule:
        name:
            f"generate_{_sample}_file" if _one_dir else f"generate_{_sample}"
        output:
            f"{_dirs[0]}/{{{_wildcard}}}" if _one_dir else FILES[_sample],
        wildcard_constraints:
            **({_wildcard: "|".join(re.escape(Path(f).name) for f in FILES[_sample])} if _one_dir else {}),
        log:
            f"{ROOT}/logs/generate_{_sample}/{{{_wildcard}}}.log" if _one_dir else f"{ROOT}/logs/generate_{_sample}.log",
        benchmark:
            f"{BENCH}/generate_{_sample}/{{{_wildcard}}}.tsv" if _one_dir else f"{BENCH}/generate_{_sample}.tsv"
        params:
            # the generate settings only: another analysis or output directory
            # with the same settings reuses the files
            spec=json.dumps(step_settings(CFG, "generate", sample=_sample)["generate"], sort_keys=True),
            paths=FILES[_sample],
            # functions of `output` are left out of the params trigger: the record beside the
            # files names the config, so another analysis with equal settings does not regenerate
            source=lambda wildcards, output: str(CFG.source),
            only=(lambda f: (lambda wildcards, output: f"--file-index {f(wildcards, output)}"))(_generated_file_index(FILES[_sample]))
            if _one_dir else "",
        threads: 1
        resources:
            mem_mb=mem_mb(1000),  # one file at a time, block by block: 0.3 GB
            runtime=runtime(20),
        shell:
            f"{HEPSEL} generate --spec {{params.spec:q}} --paths {{params.paths:q}} {{params.only}} --source {{params.source:q}} 2>&1 | tee {{log}}"

    if _one_dir:
        # the sample's target: snakemake --cores 2 generate_<sample>
        rule:
            name:
                f"generate_{_sample}"
            localrule: True
            input:
                FILES[_sample],


rule prepare:
    input:
        lambda wc: _local(FILES[wc.sample][int(wc.index)]),
        MODULES,
    output:
        table=f"{ROOT}/prepared/{{sample}}/{{index}}.parquet",
    log:
        f"{ROOT}/logs/prepare/{{sample}}_{{index}}.log",
    benchmark:
        f"{BENCH}/prepare/{{sample}}_{{index}}.tsv"
    params:
        # a remote input adds its URL: the job reruns when the file at that index is another one
        settings=lambda wc: " ".join(filter(None, (digest("prepare", sample=wc.sample), _remote(FILES[wc.sample][int(wc.index)])))),
    threads: 1
    resources:
        mem_mb=mem_mb(1000),  # one input file, read in reading.step_size chunks: 460 MB
        runtime=runtime(20),
    shell:
        f"{HEPSEL} prepare {COMMON} --sample {{wildcards.sample}} --index {{wildcards.index}} 2>&1 | tee {{log}}"


rule gather:
    input:
        [f"{ROOT}/prepared/{s}/{i:03d}.parquet" for s in CFG.samples for i in range(len(FILES[s]))],
    output:
        dataset=f"{ROOT}/dataset.parquet",
        cutflow=f"{ROOT}/cutflow.json",
    log:
        f"{ROOT}/logs/gather.log",
    benchmark:
        f"{BENCH}/gather.tsv"
    params:
        settings=digest("gather"),
    threads: 1
    resources:
        mem_mb=mem_mb(800, per_mb=0.5),  # one prepared file at a time: 1x 0.37 GB, 100x 0.56 GB; 16 s
        runtime=runtime(10, s_per_mb=0.5),
    shell:
        f"{HEPSEL} gather {COMMON} 2>&1 | tee {{log}}"


# training.fold_jobs: per_fold, one job per model and fold; per_model, one job per model that
# trains its folds on its threads, side by side or (one thread) in turn (one start-up and one
# set of imports per worker, not per fold). Both define the one rule
# `train` with the same shell command; the folds a job trains come from its outputs (a function
# of `output`: no params trigger), so switching reruns no job.
_PER_MODEL = CFG.training.fold_jobs == "per_model"


def _per_model_threads():
    """Threads (fold workers) of a per_model job: the cores shared between the models' jobs.

    With fewer cores than models (2 cores, 5 models) each job trains its folds in turn in
    one process (one start-up and one set of imports per model) and Snakemake runs the
    models side by side; with more, each job trains up to k folds side by side. Without a
    core count (a cluster executor), k.
    """
    try:
        cores = int(workflow.cores)
    except (WorkflowError, TypeError, ValueError):
        return CFG.folds.k
    return max(1, min(CFG.folds.k, cores // max(len(CFG.models), 1)))


_TRAIN_THREADS = _per_model_threads() if _PER_MODEL else 1


# Scheduling order when cores are scarce (Snakemake's `priority`; it changes no result): the
# longest training jobs first, so that short ones fill the end of the training phase and
# evaluate starts as soon as the last fold is done; after evaluate, the chains that end in the
# report (plots; the menu's lines and division) before the explanation jobs
_TRAIN_PRIORITY = {"gan_augmented": 3, "mlp": 2, "lipschitz_mlp": 2, "autoencoder": 2, "bdt": 1, "bbdt": 1}


def _train_priority(wildcards):
    return _TRAIN_PRIORITY.get(CFG.models[wildcards.model].type, 0)


def _fold_option(wildcards, output):
    """'--fold k' for a one-fold job, nothing for a job that trains every fold."""
    return "" if len(output) > 1 else f"--fold {wildcards.fold}"


rule train:
    input:
        f"{ROOT}/dataset.parquet",
    output:
        [f"{ROOT}/models/{{model}}/fold{k}.info.json" for k in FOLDS] if _PER_MODEL
        else f"{ROOT}/models/{{model}}/fold{{fold}}.info.json",
    log:
        f"{ROOT}/logs/train/{{model}}.log" if _PER_MODEL else f"{ROOT}/logs/train/{{model}}_fold{{fold}}.log",
    benchmark:
        f"{BENCH}/train/{{model}}.tsv" if _PER_MODEL else f"{BENCH}/train/{{model}}_fold{{fold}}.tsv"
    params:
        settings=lambda wc: digest("train", model=wc.model),
        folds=_fold_option,
    priority: _train_priority
    # a per_model job trains its folds side by side, one process per thread (one thread: in turn)
    threads: _TRAIN_THREADS
    resources:
        # reads only its fold's training rows and model's columns: bdt 10x 0.6 GB, 100x 2.7 GB (1.5 GB with
        # training.external_memory); 1x 0.4-0.7 GB (bdt, mlp, gan); 45 s. A per_model job holds one
        # fold per thread at a time, and takes as many rounds as its workers train folds in turn
        mem_mb=mem_mb(0, per_thread=800, per_thread_mb=2),  # its fold's rows and model's columns: 1x 0.33 GB, 100x 2.5 GB; 166 s
        runtime=runtime(20, s_per_mb=3, rounds_of=CFG.folds.k if _PER_MODEL else 1),
    shell:
        f"{HEPSEL} train {COMMON} --model {{wildcards.model}} {{params.folds}} --jobs {{threads}} 2>&1 | tee {{log}}"


rule evaluate:
    input:
        [f"{ROOT}/models/{m}/fold{k}.info.json" for m in MODELS for k in FOLDS],
        MODULES,
    output:
        summary=f"{ROOT}/summary.json",
        scores=f"{ROOT}/scores.root",
        curves=f"{ROOT}/curves.npz",
        selection=f"{ROOT}/selection/selection.json",
    log:
        f"{ROOT}/logs/evaluate.log",
    benchmark:
        f"{BENCH}/evaluate.tsv"
    params:
        settings=digest("evaluate"),
    priority: 10
    threads: 1
    resources:
        mem_mb=mem_mb(1000, per_mb=2.5),  # 1x 0.4 GB, 10x 0.8 GB, 100x 4.1 GB; 236 s
        runtime=runtime(20, s_per_mb=2),
    shell:
        f"{HEPSEL} evaluate {COMMON} 2>&1 | tee {{log}}"


rule plots:
    input:
        f"{ROOT}/summary.json",
        f"{ROOT}/curves.npz",
        f"{ROOT}/cutflow.json",
    output:
        PLOTS,
    log:
        f"{ROOT}/logs/plots.log",
    benchmark:
        f"{BENCH}/plots.tsv"
    params:
        settings=digest("plots"),
    priority: 10
    # beside the menu on 2 cores; with more threads (--set-threads plots=N) the figure sets
    # (comparisons, one per model) are drawn side by side, one process per thread
    threads: 1
    resources:
        # 1x 0.3 GB, 100x 0.45 GB; 24 s; each further process (--set-threads plots=N) 0.2 GB
        mem_mb=mem_mb(600, per_mb=0.5, per_thread=200),
        runtime=runtime(20, s_per_mb=0.5),
    shell:
        f"{HEPSEL} plots {COMMON} --jobs {{threads}} 2>&1 | tee {{log}}"


rule explain:
    input:
        [f"{ROOT}/models/{{model}}/fold{k}.info.json" for k in FOLDS],
        f"{ROOT}/dataset.parquet",
    output:
        f"{ROOT}/shap/{{model}}.npz",
        f"{ROOT}/shap/{{model}}.json",
    log:
        f"{ROOT}/logs/explain_{{model}}.log",
    benchmark:
        f"{BENCH}/explain/{{model}}.tsv"
    params:
        settings=lambda wc: digest("explain", model=wc.model),
    threads: 1
    resources:
        mem_mb=mem_mb(1000, per_mb=1),  # the explained rows only: 1x 0.3 GB, 100x 0.9 GB
        runtime=runtime(20, s_per_mb=2),
    shell:
        f"{HEPSEL} explain {COMMON} --model {{wildcards.model}} 2>&1 | tee {{log}}"


# The settings a model's "why" job reads, as a file of their digest. Its summary.json input
# is ancient (see below), and Snakemake does not check the params of a job whose only link
# to a rerun job is an ancient input; this file carries a settings edit to it instead.
rule why_settings:
    output:
        f"{ROOT}/explain/settings/{{model}}.txt",
    benchmark:
        f"{BENCH}/why_settings/{{model}}.tsv"
    params:
        settings=lambda wc: digest("why", model=wc.model),
    localrule: True
    shell:
        "echo {params.settings} > {output:q}"


rule why:
    input:
        [f"{ROOT}/models/{{model}}/fold{k}.info.json" for k in FOLDS],
        f"{ROOT}/dataset.parquet",
        f"{ROOT}/explain/settings/{{model}}.txt",
        # read for this model's first working point only: ancient, so that another model's
        # retraining (which rewrites summary.json) does not rerun this job; what the working
        # point depends on is an input (fold models, data set) or in the settings digest
        ancient(f"{ROOT}/summary.json"),
        # its raw outputs spare scoring every candidate again (checked against the fold models)
        ancient(f"{ROOT}/scores.root"),
    output:
        f"{ROOT}/explain/{{model}}.json",
    log:
        f"{ROOT}/logs/why_{{model}}.log",
    benchmark:
        f"{BENCH}/why/{{model}}.tsv"
    params:
        settings=lambda wc: digest("why", model=wc.model),
    threads: 1
    resources:
        mem_mb=mem_mb(1000, per_mb=1.5),  # 1x 0.3 GB, 100x 2.1 GB; 38 s
        runtime=runtime(20, s_per_mb=2),
    shell:
        f"{HEPSEL} explain {COMMON} --local --model {{wildcards.model}} 2>&1 | tee {{log}}"


rule fidelity:
    input:
        [f"{ROOT}/models/{{model}}/fold{k}.info.json" for k in FOLDS],
    output:
        f"{ROOT}/fidelity/{{model}}.json",
    log:
        f"{ROOT}/logs/fidelity_{{model}}.log",
    benchmark:
        f"{BENCH}/fidelity/{{model}}.tsv"
    params:
        settings=lambda wc: digest("fidelity", model=wc.model),
    threads: 1
    resources:
        mem_mb=mem_mb(1000, per_mb=4),  # 1x 0.7 GB
        runtime=runtime(20, s_per_mb=2),
    shell:
        f"{HEPSEL} fidelity {COMMON} --model {{wildcards.model}} 2>&1 | tee {{log}}"


rule study_point:
    input:
        f"{ROOT}/dataset.parquet",
    output:
        f"{ROOT}/study/{{model}}_{{n_real}}_{{seed}}.json",
    wildcard_constraints:
        n_real=r"\d+|all",
        seed=r"\d+",
    log:
        f"{ROOT}/logs/study/{{model}}_{{n_real}}_{{seed}}.log",
    benchmark:
        f"{BENCH}/study_point/{{model}}_{{n_real}}_{{seed}}.tsv"
    params:
        settings=lambda wc: digest("study", model=wc.model),
    threads: 1
    resources:
        mem_mb=mem_mb(800, per_mb=6),  # a training
        runtime=runtime(20, s_per_mb=3),
    shell:
        f"{HEPSEL} study {COMMON} --model {{wildcards.model}} --n-real {{wildcards.n_real}} --seed {{wildcards.seed}} 2>&1 | tee {{log}}"


rule study_summary:
    input:
        study_points,
    output:
        f"{ROOT}/study/augmentation.json",
        f"{ROOT}/plots/augmentation_auc.png",
    log:
        f"{ROOT}/logs/study/summary.log",
    benchmark:
        f"{BENCH}/study_summary.tsv"
    params:
        settings=digest("study"),
    threads: 1
    resources:
        mem_mb=mem_mb(500),
        runtime=runtime(10),
    shell:
        f"{HEPSEL} study {COMMON} --summary 2>&1 | tee {{log}}"


rule decorrelation_scan:
    input:
        f"{ROOT}/dataset.parquet",
    output:
        f"{ROOT}/decorrelation/scan.json",
        f"{ROOT}/plots/decorrelation_scan.png",
    log:
        f"{ROOT}/logs/decorrelation_scan.log",
    benchmark:
        f"{BENCH}/decorrelation_scan.tsv"
    params:
        settings=digest("decorrelation_scan"),
    threads: 1
    resources:
        mem_mb=mem_mb(1000, per_mb=6),  # several trainings
        runtime=runtime(30, s_per_mb=6),
    shell:
        f"{HEPSEL} decorrelation-scan {COMMON} 2>&1 | tee {{log}}"


if CFG.robustness is not None:

    rule robustness:
        input:
            FILES[CFG.signal_sample],
            FILES[CFG.minbias_sample],
            [FILES[s] for s in CFG.samples] if CFG.trigger is None else [],
            f"{ROOT}/summary.json",
            f"{ROOT}/scores.root",
            MODULES,
        output:
            ROBUSTNESS,
        log:
            f"{ROOT}/logs/robustness.log",
        benchmark:
            f"{BENCH}/robustness.tsv"
        params:
            settings=digest("robustness"),
        threads: 1
        resources:
            mem_mb=mem_mb(1200, per_mb=2.5),  # one shift at a time: 1x 0.6 GB, 100x 4.5 GB; 252 s
            runtime=runtime(30, s_per_mb=2),
        shell:
            f"{HEPSEL} robustness {COMMON} --no-progress 2>&1 | tee {{log}}"


if MENU_LINES:

    def _line_inputs(wildcards):
        """A model line reads the study's scores; a score or train line the samples' files."""
        line = CFG.menu.lines[wildcards.line]
        if line.model is not None:
            return [f"{ROOT}/scores.root"]
        return [p for s in (CFG.signal_sample, CFG.minbias_sample) for p in _local_all(FILES[s])] + MODULES

    def _local_all(paths):
        return [p for f in paths for p in _local(f)]

    rule menu_line:
        input:
            _line_inputs,
            f"{ROOT}/dataset.parquet",
        output:
            table=f"{ROOT}/menu/lines/{{line}}.parquet",
            info=f"{ROOT}/menu/lines/{{line}}.json",
        wildcard_constraints:
            line="|".join(MENU_LINES),
        log:
            f"{ROOT}/logs/menu/{{line}}.log",
        benchmark:
            f"{BENCH}/menu_line/{{line}}.tsv"
        params:
            settings=lambda wc: digest("menu_line", model=wc.line),
        priority: 10
        threads: 1
        resources:
            mem_mb=mem_mb(1500, per_mb=2),  # a line's candidates of both samples (a train line: its folds)
            runtime=runtime(20, s_per_mb=2),
        shell:
            f"{HEPSEL} menu {COMMON} --line {{wildcards.line}} 2>&1 | tee {{log}}"

    rule menu:
        input:
            [f"{ROOT}/menu/lines/{n}.parquet" for n in MENU_LINES],
            f"{ROOT}/summary.json",  # written with the selection the menu is saved into
        output:
            MENU,
            f"{ROOT}/selection/menu.json",  # the menu in the saved selection, for hepsel apply
        log:
            f"{ROOT}/logs/menu/menu.log",
        benchmark:
            f"{BENCH}/menu.tsv"
        params:
            settings=digest("menu"),
        priority: 10
        threads: 1
        resources:
            mem_mb=mem_mb(1500),  # the lines' event scores: 100k minimum-bias events, 0.5 GB
            runtime=runtime(20),
        shell:
            f"{HEPSEL} menu {COMMON} 2>&1 | tee {{log}}"


rule report:
    input:
        f"{ROOT}/summary.json",
        MENU,
        PLOTS,
        # the report draws the SHAP and "why" figures from these (with the feature labels)
        [f"{ROOT}/shap/{m}.{ext}" for m in EXPLAINED for ext in ("json", "npz")],
        [f"{ROOT}/explain/{m}.json" for m in WHY],
        [f"{ROOT}/fidelity/{m}.json" for m in GANS],
        SCAN,
        ROBUSTNESS,
    output:
        f"{ROOT}/report.html",
        f"{ROOT}/benchmarks.json",
    log:
        f"{ROOT}/logs/report.log",
    benchmark:
        f"{BENCH}/report.tsv"
    params:
        settings=digest("report"),
    # the last job: the models' explanation figures drawn side by side, one process per thread
    threads: 2
    resources:
        mem_mb=mem_mb(250, per_thread=250),  # 1x 0.33 GB in one process, 0.53 GB in two (PSS)
        runtime=runtime(10),
    shell:
        f"{HEPSEL} report {COMMON} --jobs {{threads}} 2>&1 | tee {{log}}"
