"""The `firstline` command: run the service or the whole system, manage the KB and accounts."""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from firstline.config import Settings

app = typer.Typer(
    help="firstline: a first-line support assistant (knowledge base, bot handoff, agent queue).",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
kb_app = typer.Typer(
    help="The knowledge base: import, build, search, tune and evaluate.",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
)
agents_app = typer.Typer(
    help="Agent, editor and admin accounts.",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
)
app.add_typer(kb_app, name="kb")
app.add_typer(agents_app, name="agents")


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise fail("; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())) from None


# -- processes ------------------------------------------------------------------
@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default FIRSTLINE_PORT or 8000).")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes; more than one needs PostgreSQL.")] = 1,
) -> None:
    """Run the firstline service alone.

    Example: firstline serve --port 8000
    """
    import uvicorn

    from firstline.main import create_app

    config = settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    options: dict[str, Any] = {
        "host": host or config.host,
        "port": port or config.port,
        "log_level": "info",
        "timeout_graceful_shutdown": 5,
    }
    if workers == 1:
        uvicorn.run(create_app(config), **options)
        return
    if not config.sqlalchemy_url.startswith("postgresql"):
        raise fail("--workers above 1 needs PostgreSQL (FIRSTLINE_DATABASE_URL): SQLite has no NOTIFY")
    from firstline.workers import WorkerError, check_port, run

    try:
        check_port(options["host"], options["port"])
    except WorkerError as exc:
        raise fail(str(exc)) from exc
    # Once here, so the workers do not race each other through the migrations and the
    # first start's development accounts and demo knowledge base.
    kb = _open_kb()
    try:
        if config.is_development:
            from firstline.bootstrap import ensure_demo_kb, ensure_dev_accounts

            kb.start(watch_interval=None, warm_up=False)
            ensure_dev_accounts(kb.db)
            ensure_demo_kb(config, kb.db, kb)
            kb.flush()
    finally:
        kb.stop()
        kb.db.dispose()
    # Each worker builds its app from the environment; they share the database and see
    # each other's changes through LISTEN/NOTIFY, like instances behind a load balancer.
    try:
        run(options, workers)
    except WorkerError as exc:
        raise fail(str(exc)) from exc


@app.command()
def up(
    service_port: Annotated[int, typer.Option(help="firstline service port.")] = 8000,
    rasa_port: Annotated[int, typer.Option(help="Rasa server port.")] = 5005,
    actions_port: Annotated[int, typer.Option(help="Rasa action server port.")] = 5055,
) -> None:
    """Run the whole system: firstline service, Rasa server and action server.

    Ctrl-C stops all three. Example: firstline up
    """
    from firstline.stack import Stack, StackConfig, StackError

    config = settings()
    stack = Stack(
        StackConfig(
            data_dir=config.data_dir,
            host=config.host,
            service_port=service_port,
            rasa_port=rasa_port,
            actions_port=actions_port,
            service_token=config.service_token.get_secret_value(),
            rasa_token=config.rasa_token.get_secret_value(),
        )
    )
    stopping = False

    def on_signal(signum: int, _: Any) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    typer.echo("Starting the firstline service, the Rasa action server and the Rasa server ...")
    started = time.monotonic()
    try:
        stack.start()
        c = stack.config
        typer.echo(
            f"\nfirstline is running (ready in {time.monotonic() - started:.0f}s):\n"
            f"  chat demo site   {c.service_url}/\n"
            f"  agent API docs   {c.service_url}/docs\n"
            f"  Rasa server      {c.rasa_url}  (REST: POST /webhooks/rest/webhook)\n"
            f"  action server    {c.actions_url}\n"
            f"  logs             {c.data_dir / 'logs'}\n"
            "Press Ctrl-C to stop."
        )
        while True:
            exited = stack.poll()
            if exited:
                raise fail(f"{exited} stopped unexpectedly; see {c.data_dir / 'logs' / exited}.log")
            time.sleep(1)
    except StackError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        typer.echo("\nStopping ...")
    finally:
        stack.stop()
        typer.echo("Stopped.")


# -- knowledge base ---------------------------------------------------------------
def _open_kb(onnx_queries: bool = True) -> Any:
    from firstline.db import Database, migrate
    from kb_index.embedder import Embedder
    from kb_index.service import KnowledgeBase

    config = settings()
    config.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(config.sqlalchemy_url)
    migrate(db.engine)
    embedder = Embedder(
        config.effective_embedding_model, config.data_dir / "embedding-cache.sqlite", onnx_queries=onnx_queries
    )
    return KnowledgeBase(db, embedder, config.index_dir)


def _read(path: Path) -> list[Any]:
    from kb_index.corpus import read_corpus
    from kb_index.errors import CorpusError

    try:
        return read_corpus(path)
    except CorpusError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        raise fail(f"{len(exc.problems)} problem(s) in {path}; nothing was changed") from None


@kb_app.command("validate")
def kb_validate(
    path: Annotated[Path, typer.Argument(help="A directory of .md files or a .jsonl file.")],
) -> None:
    """Check articles without storing them; prints each problem as file:line: message.

    Example: firstline kb validate content/kb
    """
    articles = _read(path)
    typer.echo(f"{len(articles)} articles, no problems")


@kb_app.command("import")
def kb_import(
    path: Annotated[Path, typer.Argument(help="A directory of .md files or a .jsonl file.")],
    replace: Annotated[bool, typer.Option(help="Also delete stored articles missing from PATH.")] = False,
) -> None:
    """Store articles (all or nothing) and update the index.

    Example: firstline kb import content/kb
    """
    from kb_index.errors import CorpusError

    articles = _read(path)
    kb = _open_kb()
    try:
        with typer.progressbar(length=len(articles), label="Importing") as bar:
            counts = kb.import_articles(articles, "cli", replace=replace, progress=bar.update)
    except CorpusError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        raise fail("nothing was changed") from None
    typer.echo(", ".join(f"{v} {k}" for k, v in counts.items()))
    _build(kb, rebuild=False)


@kb_app.command("export")
def kb_export(path: Annotated[Path, typer.Argument(help="A directory (Markdown) or a .jsonl file.")]) -> None:
    """Write every article out as Markdown files or JSON Lines.

    Example: firstline kb export /tmp/kb.jsonl
    """
    from kb_index.corpus import write_corpus

    count = write_corpus(_open_kb().all_articles(), path)
    typer.echo(f"wrote {count} articles to {path}")


def _build(kb: Any, rebuild: bool) -> None:
    from kb_index.index import UNIT_KINDS, article_units, embed_units

    kb.load_saved()  # unchanged articles keep their vectors
    articles = [a for a in kb.all_articles() if a.status == "published"]
    units = [u for i, a in enumerate(articles) for u in article_units(a, i)]
    missing = sum(
        kb.embedder.count_missing([u.text for u in units if UNIT_KINDS[u.kind] == kind], kind)
        for kind in set(UNIT_KINDS.values())
    )
    if missing:
        with typer.progressbar(length=missing, label=f"Embedding {missing} new texts") as bar:
            embed_units(kb.embedder, units, progress=bar.update)
    started = time.perf_counter()
    changed = kb.refresh(rebuild=rebuild or not kb.ready)
    kb.compact()  # what the command line saves is built whole, with no edits in deltas
    kb.flush()
    index = kb.index
    verb = "built" if changed else "up to date:"
    typer.echo(
        f"index {verb} {index.version}: {len(index.articles)} published articles, "
        f"{index.unit_count} passages ({time.perf_counter() - started:.1f}s)"
    )


@kb_app.command("build")
def kb_build(
    force: Annotated[bool, typer.Option(help="Rebuild from scratch even if nothing changed.")] = False,
) -> None:
    """Build the index from the stored articles (embeds only what changed).

    Example: firstline kb build
    """
    _build(_open_kb(), rebuild=force)


@kb_app.command("adapt")
def kb_adapt(
    epochs: Annotated[int, typer.Option(min=1, max=20, help="Passes over the example questions.")] = 1,
    negatives: Annotated[
        Path | None,
        typer.Option(help="Labelled queries; those expecting no article are learnt as questions to decline."),
    ] = None,
) -> None:
    """Fine-tune the embedding model on the published articles' questions, then rebuild the index.

    Re-run `kb tune` afterwards: thresholds belong to a model. The service uses the adapted
    model from its next start, unless FIRSTLINE_EMBEDDING_MODEL names another. Negatives
    should be questions you do not tune or evaluate on.
    Example: firstline kb adapt --epochs 1 --negatives hr-questions.jsonl && firstline kb tune content/eval
    """
    from kb_index.adapt import adapt, corpus_fingerprint
    from kb_index.encoders import DEFAULT_MODEL
    from kb_index.errors import CorpusError
    from kb_index.tuning import read_queries

    config = settings()
    if config.embedding_model:
        raise fail("FIRSTLINE_EMBEDDING_MODEL is set; unset it to use an adapted model")
    declined: list[str] = []
    if negatives is not None:
        try:
            declined = [q.query for q in read_queries(negatives) if q.expected is None]
        except CorpusError as exc:
            for problem in exc.problems:
                typer.echo(str(problem), err=True)
            raise fail(f"{len(exc.problems)} problem(s) in {negatives}; nothing was changed") from None
        if not declined:
            raise fail(f'{negatives} has no query with "expected": null')
    articles = [a for a in _open_kb().all_articles() if a.status == "published"]
    if not articles:
        raise fail("no published articles to learn from; import some first")
    name = f"adapted-{corpus_fingerprint(DEFAULT_MODEL, articles, epochs, declined)}"
    folder = config.adapted_pointer.parent / name
    with typer.progressbar(length=100, label="Adapting the model") as bar:
        done = [0]

        def advance(step: int, total: int) -> None:
            target = int(100 * step / total)
            bar.update(target - done[0])
            done[0] = target

        report = adapt(DEFAULT_MODEL, articles, folder, epochs=epochs, negatives=declined, progress=advance)
    pointer = config.adapted_pointer.with_suffix(".tmp")
    pointer.write_text(name)
    pointer.replace(config.adapted_pointer)
    typer.echo(f"adapted on {report.pairs} wordings in {report.steps} steps ({report.seconds:.0f}s): {folder}")
    _build(_open_kb(), rebuild=True)


@kb_app.command("search")
def kb_search(
    text: Annotated[str, typer.Argument(help="The question.")],
    lang: Annotated[str, typer.Option("--lang", help="en, lv or ru.")] = "en",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    top_k: Annotated[int, typer.Option(help="How many results.")] = 5,
) -> None:
    """Search like the bot would, and show the decision and the ranking.

    Example: firstline kb search "forgot my password" --lang en
    """
    from kb_index.api import search_out
    from kb_index.errors import KnowledgeBaseError

    kb = _open_kb(onnx_queries=False)  # the export would cost more than it saves on one question
    try:
        kb.start(watch_interval=None, warm_up=False)
        result = kb.search(text, lang, top_k)
    except KnowledgeBaseError as exc:
        raise fail(str(exc)) from None
    if as_json:
        typer.echo(search_out(result).model_dump_json(indent=2))
        return
    typer.echo(f"decision: {result.decision}  confidence: {result.confidence:.3f}"
               + ("  (another language)" if result.cross_language else ""))  # fmt: skip
    for rank, item in enumerate(result.results, 1):
        typer.echo(
            f"{rank}. {item.article.id:<32} {item.score:.3f}  "
            f"(dense {item.dense:.3f}, lexical {item.lexical:.3f})  {item.article.title}"
        )


@kb_app.command("tune")
def kb_tune(
    queries: Annotated[Path, typer.Argument(help="Labelled queries: a .jsonl file or a directory of them.")],
    split: Annotated[str | None, typer.Option(help='Use only lines with this "split" value.')] = "validation",
    objective: Annotated[str, typer.Option(help="utility, balanced, recall_floor or accuracy_floor.")] = "utility",
) -> None:
    """Fit fusion weights and answer/clarify thresholds on labelled validation queries.

    Example: firstline kb tune content/eval --split validation
    """
    from kb_index.errors import CorpusError, KnowledgeBaseError
    from kb_index.tuning import OBJECTIVES, read_queries, tune

    if objective not in OBJECTIVES:
        raise fail(f"--objective must be one of {', '.join(OBJECTIVES)}")
    try:
        labelled = read_queries(queries, split)
        kb = _open_kb()
        kb.start(watch_interval=None)
        calibration = tune(kb.index, kb.embedder.encode_uncached, labelled, objective)  # type: ignore[arg-type]
    except CorpusError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        raise fail("tuning failed") from None
    except KnowledgeBaseError as exc:
        raise fail(str(exc)) from None
    kb.set_calibration(calibration)
    kb.flush()
    for language, fitted in {"pooled": calibration.default, **calibration.languages}.items():
        typer.echo(
            f"{language:<7} dense weight {fitted.dense_weight:.2f}  answer ≥ {fitted.answer_threshold:.2f}  "
            f"clarify ≥ {fitted.clarify_threshold:.2f}"
        )
    typer.echo(f"fitted on {len(labelled)} queries; stored with the index")


@kb_app.command("eval")
def kb_eval(
    queries: Annotated[Path, typer.Argument(help="Labelled queries: a .jsonl file or a directory of them.")],
    split: Annotated[str | None, typer.Option(help='Use only lines with this "split" value.')] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Measure accuracy, out-of-scope recall and latency on labelled queries.

    Example: firstline kb eval content/eval --split test --json
    """
    from kb_index.errors import CorpusError, KnowledgeBaseError
    from kb_index.tuning import evaluate, read_queries

    try:
        labelled = read_queries(queries, split)
        kb = _open_kb()
        kb.start(watch_interval=None)
    except CorpusError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        raise fail("evaluation failed") from None
    except KnowledgeBaseError as exc:
        raise fail(str(exc)) from None

    def run(text: str, language: str) -> tuple[str, list[str]]:
        result = kb.search(text, language, 5)
        return result.decision, [r.article.id for r in result.results]

    report = evaluate(run, labelled)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    typer.echo(
        f"{'':8}{'n':>6}{'in-scope acc':>14}{'top-3':>8}{'MRR':>8}{'OOS recall':>12}{'OOS prec':>10}"
        f"{'p50 ms':>8}{'p95 ms':>8}"
    )
    for name, row in {"all": report, **report["languages"]}.items():
        typer.echo(
            f"{name:8}{row['n']:>6}{_fmt(row['in_scope_accuracy']):>14}{_fmt(row['top3_accuracy']):>8}"
            f"{_fmt(row['mrr']):>8}{_fmt(row['oos_recall']):>12}{_fmt(row['oos_precision']):>10}"
            f"{_fmt(row['p50_ms']):>8}{_fmt(row['p95_ms']):>8}"
        )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}" if value < 10 else f"{value:.1f}"


# -- accounts --------------------------------------------------------------------
@agents_app.command("create")
def agents_create(
    email: Annotated[str, typer.Option(help="Login e-mail.")],
    name: Annotated[str, typer.Option(help="Name shown to users.")],
    role: Annotated[str, typer.Option(help="agent, editor or admin.")] = "agent",
    languages: Annotated[str, typer.Option(help="Comma-separated: en,lv,ru.")] = "en",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create an account. The password comes from standard input, never the command line.

    Example: echo "$PASSWORD" | firstline agents create --email a@example.com --name Anna --role agent --password-stdin
    """
    from firstline.db import Database, migrate
    from handoff import auth
    from handoff.errors import Conflict
    from handoff.schemas import AgentCreate

    if not password_stdin:
        raise fail("pass --password-stdin and give the password on standard input")
    password = sys.stdin.readline().rstrip("\n")
    try:
        body = AgentCreate(
            email=email, name=name, role=role, password=password,  # type: ignore[arg-type]
            languages=[x.strip() for x in languages.split(",") if x.strip()],  # type: ignore[misc]
        )  # fmt: skip
    except ValidationError as exc:
        raise fail("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from None
    config = settings()
    db = Database(config.sqlalchemy_url)
    migrate(db.engine)
    try:
        with db.session() as session:
            agent = auth.create_agent(
                session, email=body.email, name=body.name, password=body.password, role=body.role,
                languages=list(body.languages),
            )  # fmt: skip
            typer.echo(f"created {agent.role} {agent.email} (id {agent.id})")
    except Conflict as exc:
        raise fail(str(exc)) from None


def main() -> None:
    from kb_index.errors import EncoderError

    try:
        app()
    except EncoderError as exc:  # a missing or corrupt model: whichever command needed it
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
