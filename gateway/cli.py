"""The `gateway` command."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from gateway.config import get_settings
from workers.queues import QUEUES

app = typer.Typer(help="Letters of support to political prisoners: intake, checks, "
                       "submission, replies.", no_args_is_help=True)
db_app = typer.Typer(help="The database.", no_args_is_help=True)
prisoners_app = typer.Typer(help="The prisoner directory.", no_args_is_help=True)
user_app = typer.Typer(help="Organizer accounts for the dashboard.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(prisoners_app, name="prisoners")
app.add_typer(user_app, name="user")
providers_app = typer.Typer(help="Prison e-mail services and their catalogues.",
                            no_args_is_help=True)
post_app = typer.Typer(help="Letters that go by post: printable batches for volunteers.",
                       no_args_is_help=True)
writers_app = typer.Typer(help="Writers (known only by a keyed hash of their address).",
                          no_args_is_help=True)
app.add_typer(writers_app, name="writers")
app.add_typer(providers_app, name="providers")
app.add_typer(post_app, name="post")
campaigns_app = typer.Typer(help="Campaigns: themed calls to write to chosen prisoners.",
                            no_args_is_help=True)
app.add_typer(campaigns_app, name="campaigns")
evenings_app = typer.Typer(help="Letter evenings: a room writing at once.",
                           no_args_is_help=True)
app.add_typer(evenings_app, name="evenings")
postcards_app = typer.Typer(help="Postcards: short greetings to one prisoner sent as one "
                            "letter.", no_args_is_help=True)
app.add_typer(postcards_app, name="postcards")
keys_app = typer.Typer(help="The keys derived from GATEWAY_SECRET_KEY.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
console = Console()


@app.callback()
def _logging() -> None:
    """Every command logs through the one set-up (gateway/logging_setup.py); the worker,
    beat and the dashboard set it up again in the processes they become."""
    from gateway.logging_setup import configure
    configure()


def _sessions():
    from gateway.db import session_factory
    return session_factory(get_settings().database_url)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema (Alembic)."""
    from gateway.migrate import upgrade
    url = get_settings().database_url
    upgrade(url)
    console.print(f"[green]database is up to date[/] ({_redact(url)})")


@prisoners_app.command("import")
def prisoners_import(path: Path = typer.Argument(..., exists=True, readable=True),
                     dry_run: bool = typer.Option(False, help="Show what would change.")) -> None:
    """Import a CSV (code,last_name,first_name,middle_name,birth_year,region,facility_name,
    facility_id,provider; optional birth_date and status, in the public lists' words).
    Re-importing updates each prisoner in place, keyed by code."""
    from gateway.directory import import_rows, read_rows
    with _sessions()() as session:
        report = import_rows(session, read_rows(path))
        if dry_run or report.errors:  # a bad row: nothing half-imported
            session.rollback()
        else:
            session.commit()
    verb = "would add" if dry_run or report.errors else "added"
    console.print(f"{verb} {report.added}, updated {report.updated}, "
                  f"unchanged {report.unchanged}")
    for err in report.errors:
        console.print(f"[red]{err}[/]")
    if report.errors:
        console.print("[red]nothing imported: fix the rows above and run it again[/]")
        raise typer.Exit(1)


@prisoners_app.command("import-list")
def prisoners_import_list(
        path: Path = typer.Argument(..., exists=True, readable=True,
                                    help="A group's list: CSV (any delimiter, UTF-8 or "
                                         "cp1251), XLSX or JSON."),
        mapping: Path | None = typer.Option(None, exists=True, readable=True,
                                            help="TOML file naming the columns; without "
                                                 "it they are guessed from the headers."),
        provider: str | None = typer.Option(None, help="Whose catalogue the facilities "
                                                       "are matched in (default http)."),
        confirm: list[str] = typer.Option([], help="ROW=FACILITY_ID: a person's choice for "
                                                   "an uncertain facility (repeatable)."),
        retire: list[str] = typer.Option([], help="CODE of a prisoner absent from the list "
                                                  "an organizer confirms is gone "
                                                  "(repeatable)."),
        partial: bool = typer.Option(False, help="The file is not the whole list: nobody "
                                                 "is reported absent."),
        apply: bool = typer.Option(False, help="Write the changes; without it, only show "
                                               "them.")) -> None:
    """Import a published prisoner list: shows the new prisoners, transfers, the people
    absent from the list and every uncertain facility, and with --apply writes them in one
    transaction (a single bad cell: nothing is written)."""
    from rich.progress import Progress

    from gateway.directory_import import prepare
    from gateway.directory_import.apply import apply_plan
    from gateway.directory_import.mapping import MappingError
    from gateway.directory_import.readers import ListFileError
    chosen: dict[int, str] = {}
    for item in confirm:
        row, _, facility_id = item.partition("=")
        if not row.strip().isdigit() or not facility_id.strip():
            raise typer.BadParameter(f"{item!r}: write ROW=FACILITY_ID", param_hint="--confirm")
        chosen[int(row)] = facility_id.strip()
    with _sessions()() as session, Progress(console=console, transient=True) as bar:
        task = bar.add_task("reading", total=None)
        try:
            _, _, plan = prepare(
                session, path, mapping_path=mapping, provider=provider, confirmed=chosen,
                full_list=not partial, settings=get_settings(),
                on_rows=lambda n: bar.update(task, total=n, description="matching"),
                progress=lambda n: bar.advance(task, n))
        except (ListFileError, MappingError) as exc:
            console.print(f"[red]{path.name}: {exc}[/]")
            raise typer.Exit(1) from None
        bar.stop()
        _show_plan(plan)
        if plan.errors:
            console.print(f"[red]nothing imported: {len(plan.errors)} bad row(s)[/]")
            raise typer.Exit(1)
        if not apply:
            console.print("nothing written yet: run again with --apply")
            return
        try:
            report = apply_plan(session, plan, get_settings(), retire=frozenset(retire))
        except ValueError as exc:
            session.rollback()
            console.print(f"[red]nothing imported: {exc}[/]")
            raise typer.Exit(1) from None
        session.commit()
    console.print(f"[green]added {report.added}, updated {report.updated}, moved "
                  f"{report.moved}, retired {report.retired}; {report.held_letters} "
                  f"letter(s) held for the new address[/]")


def _show_plan(plan) -> None:
    console.print(f"{plan.rows} rows: {len(plan.new)} new, {len(plan.updated)} changed "
                  f"({len(plan.transfers)} moved), {plan.unchanged} unchanged, "
                  f"{len(plan.to_confirm)} to confirm, {len(plan.absent)} absent")
    for err in plan.errors:
        console.print(f"[red]{err}[/]")
    if plan.new:
        table = Table("row", "new prisoner", "facility", title="New")
        for r in plan.new:
            table.add_row(str(r.row), r.name, r.values.get("facility_name", ""))
        console.print(table)
    if plan.transfers:
        table = Table("code", "prisoner", "from", "to", title="Moved")
        for t in plan.transfers:
            table.add_row(t.code, t.name, t.from_facility, t.to_facility)
        console.print(table)
    if plan.to_confirm:
        table = Table("row", "prisoner", "as written", "why", "suggestions (--confirm "
                      "ROW=ID)", title="Facility to confirm")
        for c in plan.to_confirm:
            table.add_row(str(c.row), c.name, c.written, c.why,
                          "\n".join(f"{s.facility_id}: {s.label}" for s in c.suggestions[:3]))
        console.print(table)
    if plan.absent:
        table = Table("code", "prisoner", "facility", title="Absent from the list "
                      "(released? --retire CODE once confirmed)")
        for e in plan.absent:
            table.add_row(e.code, e.name, e.facility_name)
        console.print(table)
@campaigns_app.command("list")
def campaigns_list() -> None:
    """Every campaign with its progress: prisoners, letters in, sent, held, spent."""
    from sqlalchemy import select

    from gateway import campaign_progress
    from gateway.models import Campaign
    table = Table("tag", "title", "dates", "prisoners", "letters", "sent", "held", "spent ₽")
    with _sessions()() as session:
        for c in session.scalars(select(Campaign).order_by(Campaign.created_at)):
            n = campaign_progress.counts(session, campaign_id=c.id)
            dates = f"{c.starts_on or ''}–{c.ends_on or ''}".strip("–")
            table.add_row(c.tag, c.title, dates, str(len(c.prisoners)), str(n.received),
                          str(n.sent), str(n.held), f"{n.spend_rub:.2f}")
    console.print(table)


@campaigns_app.command("create")
def campaigns_create(
        tag: str = typer.Argument(..., help="Writers use letters+TAG@… or [TAG] in the subject."),
        title: str = typer.Option(..., help="The campaign's title."),
        prisoner: list[str] = typer.Option([], help="A prisoner's code (repeat for more)."),
        region: str = typer.Option(None, help="Filter: region contains this."),
        birthday_within: int = typer.Option(None, help="Filter: birthday within N days."),
        quiet_days: int = typer.Option(None, help="Filter: no letter for N days."),
        gender: str = typer.Option(None, help="Filter: f or m (where the directory has it)."),
        starts: str = typer.Option(None, help="First day, YYYY-MM-DD."),
        ends: str = typer.Option(None, help="Last day, YYYY-MM-DD."),
        budget: float = typer.Option(None, help="Budget in rubles."),
        guidance: str = typer.Option("", help="Guidance text for writers."),
        postcards: bool = typer.Option(False, help="Gather short greetings to one prisoner "
                                       "into one postcard (one letter, paid once).")) -> None:
    """Create a campaign for prisoners named by code, or everyone a filter finds today."""
    from datetime import date
    from decimal import Decimal

    from sqlalchemy import select

    from gateway import campaigns
    from gateway.models import Prisoner
    rule = campaigns.Filter(region=region, birthday_within_days=birthday_within,
                            quiet_days=quiet_days, gender=gender)
    with _sessions()() as session:
        if rule.as_dict():
            chosen = [p.id for p in campaigns.choose(session, rule, date.today())]
        else:
            rule = None
            found = dict(session.execute(select(Prisoner.code, Prisoner.id)
                                         .where(Prisoner.code.in_(prisoner))).all())
            unknown = [c for c in prisoner if c not in found]
            if unknown:
                console.print(f"[red]no prisoner with the code(s) {', '.join(unknown)}[/]")
                raise typer.Exit(1)
            chosen = list(found.values())
        if not chosen:
            console.print("[red]no prisoners: name them with --prisoner or give a filter that "
                          "finds some[/]")
            raise typer.Exit(1)
        try:
            campaign = campaigns.create(
                session, title=title, tag=tag, prisoner_ids=chosen, rule=rule, created_by="cli",
                starts_on=date.fromisoformat(starts) if starts else None,
                ends_on=date.fromisoformat(ends) if ends else None,
                budget_rub=Decimal(str(budget)) if budget is not None else None,
                guidance=guidance, postcards=postcards)
        except (campaigns.CampaignError, ValueError) as exc:
            console.print(f"[red]{exc}[/]")
            raise typer.Exit(1) from exc
        session.commit()
        address = campaigns.plus_address(get_settings().gateway_address, campaign.tag)
    console.print(f"[green]created[/] {campaign.tag!r} for {len(chosen)} prisoners; "
                  f"writers write to {address}")


@evenings_app.command("create")
def evenings_create(
        city: str = typer.Option(..., help="Where the evening is."),
        date_: str = typer.Option(..., "--date", help="The day, YYYY-MM-DD."),
        place: str = typer.Option("", help="The room."),
        campaign: str = typer.Option(None, help="The campaign it writes for (its tag)."),
        postcards: bool = typer.Option(True, help="Gather short greetings to one prisoner "
                                       "into one postcard.")) -> None:
    """Create a letter evening; prints its code (writers use letters+CODE@…)."""
    from datetime import date

    from sqlalchemy import select

    from gateway import campaigns
    from gateway.models import Campaign, Evening
    with _sessions()() as session:
        campaign_id = None
        if campaign:
            campaign_id = session.scalar(select(Campaign.id).where(
                Campaign.tag == campaigns.normalize_tag(campaign)))
            if campaign_id is None:
                console.print(f"[red]no campaign {campaign!r}[/]")
                raise typer.Exit(1)
        evening = Evening(code=campaigns.new_evening_code(session), city=city[:100],
                          place=place[:200], held_on=date.fromisoformat(date_),
                          campaign_id=campaign_id, postcards=postcards, created_by="cli")
        session.add(evening)
        session.commit()
        code = evening.code
    print(code)


def _postcard_scope(session, campaign: str | None, evening: str | None) -> dict:
    from sqlalchemy import select

    from gateway.models import Campaign, Evening
    if evening:
        found = session.scalar(select(Evening.id).where(Evening.code == evening.lower()))
        if found is None:
            console.print(f"[red]no evening {evening!r}[/]")
            raise typer.Exit(1)
        return {"evening_id": found}
    found = session.scalar(select(Campaign.id).where(Campaign.tag == (campaign or "").lower()))
    if found is None:
        console.print("[red]name an --evening CODE or a --campaign TAG[/]")
        raise typer.Exit(1)
    return {"campaign_id": found}


@postcards_app.command("close")
def postcards_close(
        campaign: str = typer.Option(None, help="Close the campaign's open postcards now."),
        evening: str = typer.Option(None, help="Close the evening's open postcards now.")
) -> None:
    """Send a campaign's or an evening's open postcards now, instead of at their window's
    end (the worker submits them)."""
    from gateway import actions, postcards
    settings = get_settings()
    with _sessions()() as session:
        made = [actions.close_postcard(session, settings, pid, actor="cli",
                                       why="closed by an organizer")
                for pid in postcards.open_ids(session, **_postcard_scope(session, campaign,
                                                                         evening))]
        session.commit()
        ids = [m.id for m in made if m is not None]
    if ids:
        try:
            from workers.sender import send
            send("workers.tasks.submit_letters", ids)
        except Exception as exc:  # noqa: BLE001 - they are due now: the sweeper submits them
            console.print(f"[yellow]not queued ({type(exc).__name__}); the sweeper will "
                          "submit them[/]")
    console.print(f"closed {len(made)} postcard(s); {len(ids)} letter(s) to submit")


@postcards_app.command("savings")
def postcards_savings(campaign: str = typer.Option(None), evening: str = typer.Option(None)
                      ) -> None:
    """What the postcards saved: the greetings as a letter each against the postcards."""
    from gateway import postcards
    with _sessions()() as session:
        s = postcards.savings(session, **_postcard_scope(session, campaign, evening))
    print(f"postcards={s.postcards} open={s.open} greetings={s.greetings} pages={s.pages} "
          f"own_letters_rub={s.own_letters_rub:.2f} postcards_rub={s.postcards_rub:.2f} "
          f"saved_rub={s.saved_rub:.2f}")


@writers_app.command("confirm")
def writers_confirm(path: Path = typer.Argument(..., exists=True, readable=True)) -> None:
    """Mark writers the organizers know as confirmed: FILE holds their addresses, one a
    line. Only the keyed hash of each is stored; their waiting letters go on."""
    from gateway.crypto import keyring, mask
    from gateway.intake.writers import confirm_known, read_address_list

    addresses, refused = read_address_list(path.read_text(encoding="utf-8-sig"))
    keys = keyring(get_settings())
    fresh = released = 0
    with _sessions()() as session:
        for address in dict.fromkeys(a.lower() for a in addresses):
            new, letters = confirm_known(session, keys.address_hash(address), "cli")
            fresh += new
            released += len(letters)
        session.commit()
    console.print(f"confirmed {fresh} writer(s), {len(addresses) - fresh} already confirmed "
                  f"or repeated; {released} waiting letter(s) go on")
    for line in refused:  # masked: this output may end up in a terminal log
        console.print(f"[red]not an address, skipped: {mask(line)}[/]")
    if refused:
        raise typer.Exit(1)


@app.command()
def status() -> None:
    """Letters per state, with the age of the oldest in each."""
    from sqlalchemy import func, select

    from gateway.models import Letter, OutboundMail, Reply, utcnow
    with _sessions()() as session:
        rows = session.execute(select(Letter.state, func.count(), func.min(Letter.updated_at))
                               .group_by(Letter.state)).all()
        mail = session.execute(select(OutboundMail.state, func.count())
                               .group_by(OutboundMail.state)).all()
        replies = session.execute(select(Reply.state, func.count()).group_by(Reply.state)).all()
    table = Table(title="Letters")
    table.add_column("state")
    table.add_column("count", justify="right")
    table.add_column("oldest", justify="right")
    now = utcnow()
    for state, count, oldest in sorted(rows):
        age = now - oldest if oldest else None
        table.add_row(state, str(count), _age(age.total_seconds()) if age else "")
    console.print(table)
    console.print("outgoing mail: " + (", ".join(f"{s} {c}" for s, c in mail) or "none"))
    console.print("replies: " + (", ".join(f"{s} {c}" for s, c in replies) or "none"))


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001
        return url


def _few_malloc_arenas() -> dict[str, str]:
    """The environment for a threaded process: glibc gives each thread a malloc arena of
    its own, and the freed memory scattered over them is not handed back. Two arenas:
    -12 MB PSS in the worker (bench.footprint --n 3000), no measurable CPU. An operator's
    own MALLOC_ARENA_MAX wins."""
    return {"MALLOC_ARENA_MAX": "2", **os.environ}


@app.command()
def worker(concurrency: int = typer.Option(
               8, "--concurrency", "-c",
               help="Tasks at once: threads (the default pool) or processes (prefork)."),
           pool: str = typer.Option(
               "threads", "--pool", "-P", help="threads (one process: a small server) or "
               "prefork (a process a task: more cores and memory)."),
           queues: str = typer.Option(
               ",".join(QUEUES), help="Queues to serve, in the order they are served "
               "(first the one that feeds the pipeline, last the writers' mail).")) -> None:
    """Run a Celery worker.

    Eight threads by default: one process holds the pipeline once (~190 MB PSS against ~310
    for two prefork children and their parent, bench/README.md), the parse and the scans run
    in their own bounded processes outside the GIL, and the threads overlap the waits on the
    provider, SMTP and SQL (a batch's POSTs and e-mails go one after another, so more batches
    in flight keep the cores busy: 8 threads ~135 letters/s against ~115 for 4). On a server
    with cores to spare, `--pool prefork -c N`."""
    os.execvpe(sys.executable, [sys.executable, "-m", "celery", "-A", "workers.celery_app",
                                "worker", "-Q", queues, "-c", str(concurrency), "-P", pool,
                                "--without-gossip", "--without-mingle", "-l", "INFO"],
               _few_malloc_arenas())


@app.command()
def beat(schedule: Path = typer.Option(Path("var/celerybeat-schedule")),
         watch_inbox: bool = typer.Option(
             False, help="Also watch the inbox (IMAP IDLE) in this process, instead of "
             "running `gateway imap-watch`: one process less (~50 MB) on a small server.")
         ) -> None:
    """Run the scheduler (sweeper, inbox backstop, reply and status polling). Run ONE."""
    schedule.parent.mkdir(parents=True, exist_ok=True)
    # The slim app: beat sends tasks by name and never imports the pipeline.
    module = "workers.beat_watch" if watch_inbox else "workers.sender"
    os.execvp(sys.executable, [sys.executable, "-m", "celery", "-A", module,
                               "beat", "-s", str(schedule), "-l", "INFO"])


@app.command("imap-watch")
def imap_watch() -> None:
    """Watch the shared inbox with IMAP IDLE and start an ingest when mail arrives.
    Runs `workers.watch`, a small process: it sends the ingest by name and loads neither
    this command line nor the pipeline."""
    console.print(f"watching {_inbox().label}")
    os.execvp(sys.executable, [sys.executable, "-m", "workers.watch"])


def _inbox():
    """The shared inbox, as the ingest task (`workers.tasks.inbox`) opens it."""
    from gateway.mail.imap import Mailbox
    return Mailbox.inbox(get_settings())


@app.command()
def web(host: str = typer.Option(None), port: int = typer.Option(None),
        workers: int = typer.Option(1, help="Processes; each holds the whole app (~120 MB)."),
        threads: int = typer.Option(8, help="Threads a process (requests mostly wait on SQL).")
        ) -> None:
    """Serve the organizers' dashboard (gunicorn)."""
    s = get_settings()
    bind = f"{host or s.web_host}:{port or s.web_port}"
    os.execvpe(sys.executable, [sys.executable, "-m", "gunicorn", "-b", bind, "-w", str(workers),
                                "--threads", str(threads), "--access-logfile", "-",
                                "--logger-class", "gateway.web.gunicorn_logging.GatewayLogger",
                                "gateway.web.app:create_app()"], _few_malloc_arenas())


@app.command()
def simulator(host: str = "127.0.0.1", port: int = 8025,
              state: Path = typer.Option(Path("var/simulator.db")),
              token: str = typer.Option(None, help="Bearer token (default: the provider token)."),
              smtp_host: str = typer.Option(None, help="Mail replies through this SMTP server."),
              smtp_port: int = 25,
              reply_from: str = "noreply@fsin-pismo.example") -> None:
    """Run the prison e-mail service simulator (provider-api.md, controls included)."""
    from gateway.simulator.server import serve_forever
    state.parent.mkdir(parents=True, exist_ok=True)
    token = token or get_settings().provider_token.get_secret_value()
    console.print(f"simulator on http://{host}:{port} (state {state})")
    serve_forever(host, port, str(state), token, smtp_host, smtp_port, reply_from)


@user_app.command("add")
def user_add(username: str, role: str = typer.Option("admin", help="admin, moderator, viewer or volunteer"),
             password: str = typer.Option(None, help="Default: generate and print one.")) -> None:
    """Create an organizer account (there is no self-registration)."""
    from gateway.web.accounts import create_user
    password = password or secrets.token_urlsafe(12)
    with _sessions()() as session:
        try:
            create_user(session, username, password, role)
        except ValueError as exc:
            console.print(f"[red]{exc}[/]")
            raise typer.Exit(1) from exc
        session.commit()
    console.print(f"user [bold]{username}[/] ({role}) created; password: [bold]{password}[/]")


@user_app.command("digest")
def user_digest(username: str,
                email: str = typer.Option(None, help="Where the weekly digest goes."),
                on: bool = typer.Option(True, "--on/--off", help="Get the weekly digest.")) -> None:
    """Set an organizer's address and turn the weekly digest on or off."""
    from sqlalchemy import select

    from gateway.crypto import keyring
    from gateway.digest.subscription import masked_email, set_digest
    from gateway.models import User
    keys = keyring(get_settings())
    with _sessions()() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            console.print(f"[red]no user named {username}[/]")
            raise typer.Exit(1)
        try:
            set_digest(user, keys, email=email, opt_in=on)
        except ValueError as exc:
            console.print(f"[red]{exc}[/]")
            raise typer.Exit(1) from exc
        session.commit()
        shown = masked_email(user, keys)
    console.print(f"weekly digest for [bold]{username}[/]: {'on' if on else 'off'} ({shown})")


@user_app.command("password")
def user_password(username: str,
                  password: str = typer.Option(None, help="Default: generate and print one.")) -> None:
    """Set a new password for an organizer account."""
    from sqlalchemy import select

    from gateway.models import User
    from gateway.web.accounts import set_password
    from gateway.web.sessions import end_all
    password = password or secrets.token_urlsafe(12)
    with _sessions()() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            console.print(f"[red]no user named {username}[/]")
            raise typer.Exit(1)
        set_password(user, password)
        ended = end_all(session, user.id)  # a stolen session must not outlive the old password
        session.commit()
    console.print(f"password of [bold]{username}[/] set to [bold]{password}[/]; "
                  f"{ended} dashboard session(s) ended")


@user_app.command("logout")
def user_logout(username: str) -> None:
    """End every dashboard session of an organizer, on every device (a lost laptop)."""
    from sqlalchemy import select

    from gateway.models import User
    from gateway.web.sessions import end_all
    with _sessions()() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            console.print(f"[red]no user named {username}[/]")
            raise typer.Exit(1)
        ended = end_all(session, user.id)
        session.commit()
    console.print(f"{ended} dashboard session(s) of [bold]{username}[/] ended")


@providers_app.command("sync")
def providers_sync() -> None:
    """Fetch every provider's facility catalogue and match the directory against it."""
    from gateway.providers.catalogue import sync_all, unreached
    with _sessions()() as session:
        reports = sync_all(session, get_settings())
        session.commit()
        missing = unreached(session)
    for r in reports:
        if r.total < 0:
            console.print(f"[red]{r.provider}: sync failed; the old catalogue stays[/]")
        else:
            console.print(f"{r.provider}: {r.total} facilities (+{r.added} ~{r.updated} "
                          f"-{r.removed})")
    for item in missing:
        console.print(f"[yellow]not reached:[/] {item.prisoner_code} {item.prisoner_name}: "
                      f"{item.provider} has no facility {item.facility_id} "
                      f"({item.facility_name})")


@post_app.command("queue")
def post_queue_cmd() -> None:
    """Letters waiting to be printed, per facility."""
    from gateway.human.post import post_queue
    with _sessions()() as session:
        queue = post_queue(session)
        if not queue:
            console.print("nothing waits for the post")
        for facility_id, letters in queue.items():
            console.print(f"{facility_id}: {len(letters)} letter(s)")


@post_app.command("batch")
def post_batch(facility_id: str, out: Path = typer.Option(None, help="Where to write the PDF."),
               actor: str = typer.Option("cli", help="Who prints it (for the event log).")) -> None:
    """Print the letters waiting for one facility into one PDF."""
    from gateway.human.post import PostError, build_batch
    with _sessions()() as session:
        try:
            batch = build_batch(session, facility_id, actor, get_settings())
        except PostError as exc:
            console.print(f"[red]{exc}[/]")
            raise typer.Exit(1) from exc
        session.commit()
        out = out or Path(f"post-batch-{batch.id}.pdf")
        out.write_bytes(batch.pdf)
        console.print(f"batch {batch.id}: {batch.pages} page(s) written to {out}; after posting "
                      f"run: gateway post posted {batch.id}")


@post_app.command("posted")
def post_posted(batch_id: int, actor: str = typer.Option("cli"),
                postage: str = typer.Option("", help="What stamps and envelopes cost (RUB).")
                ) -> None:
    """Mark a printed batch as posted: its letters become SUBMITTED and writers are told."""
    from gateway.human.post import PostError, mark_posted
    from gateway.web.desk import parse_price
    try:
        paid = parse_price(postage)
    except ValueError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    with _sessions()() as session:
        try:
            mail = mark_posted(session, batch_id, actor, get_settings(), postage=paid)
        except PostError as exc:
            console.print(f"[red]{exc}[/]")
            raise typer.Exit(1) from exc
        session.commit()
    console.print(f"batch {batch_id} marked posted; {len(mail)} notice(s) queued")


@post_app.command("outcome")
def post_outcome(letter_id: int, outcome: str = typer.Argument(
                     ..., help="delivered, censored or not_accepted (returned by post)"),
                 reason: str = typer.Option("", help="The reason the writer will read."),
                 actor: str = typer.Option("cli")) -> None:
    """What became of a sent desk or post letter; the writer is told."""
    from gateway.human.desk import DeskError, record_outcome
    with _sessions()() as session:
        try:
            mail = record_outcome(session, get_settings(), letter_id, actor, outcome, reason)
        except DeskError as exc:
            console.print(f"[red]{exc}[/]")
            raise typer.Exit(1) from exc
        session.commit()
    console.print(f"letter {letter_id}: {outcome}; {len(mail)} notice(s) queued")


@app.command()
def purge(dry_run: bool = typer.Option(False, help="Count what would go; change nothing.")) -> None:
    """Forget what retention says (GATEWAY_RETENTION_DAYS after a letter's end): raw mail,
    texts, photos, reply scans, writers' addresses. Events and counts stay."""
    from gateway.retention import plan
    from gateway.retention import purge as run_purge
    settings = get_settings()
    if dry_run:
        with _sessions()() as session:
            counts = plan(session, settings)
        console.print(f"would purge (letters ended over {settings.retention_days} days ago):")
        for line in counts.lines():
            console.print(f"  {line}")
        return
    counts = run_purge(_sessions(), settings,
                       progress=lambda c: console.print(f"  … {c.letters} letters so far"))
    console.print("[green]purged[/]:")
    for line in counts.lines():
        console.print(f"  {line}")


@keys_app.command("rotate")
def keys_rotate(batch: int = typer.Option(500, help="Rows per transaction.")) -> None:
    """Re-encrypt and re-index everything under GATEWAY_SECRET_KEY while the old secrets
    are still in GATEWAY_OLD_SECRET_KEYS. Safe to run again (after a crash, say): what is
    done already is skipped. Afterwards remove the old secrets."""
    from gateway.crypto import keyring
    from gateway.rotation import rotate
    settings = get_settings()
    done = rotate(_sessions(), keyring(settings), batch=batch,
                  progress=lambda what, last: console.print(f"  {what}: up to id {last}"))
    console.print("[green]rotated[/]: " + (", ".join(f"{n} {what}" for what, n in
                                                     sorted(done.counts.items())) or "nothing to do"))
    if settings.old_secrets():
        console.print("Now remove GATEWAY_OLD_SECRET_KEYS and restart every process.")


@app.command()
def sweep() -> None:
    """Re-drive anything stuck, once, now (beat does this every few seconds)."""
    from workers.tasks import sweep as sweep_task
    console.print(sweep_task())


@app.command()
def demo(base_dir: Path = typer.Option(Path("var/demo"), help="Where the demo keeps its state."),
         web_port: int = 8000) -> None:
    """Run the whole gateway on one machine with local stand-ins, and print where to write."""
    try:
        from gateway.demo.stack import run_demo
    except ImportError as exc:  # a production install has no stand-in servers
        console.print(f"[red]the demo needs its extra: pip install "
                      f"'prison-letters-gateway[demo]' ({exc})[/]")
        raise typer.Exit(1) from exc
    run_demo(base_dir.resolve(), web_port=web_port)


@app.command("demo-send")
def demo_send(to: str = typer.Option("Петровой Марии", help="Who the letter is for."),
              sender: str = typer.Option("Анна <anna@example.org>"),
              text: str = typer.Option(None, help="The letter (default: a sample).")) -> None:
    """Send a sample letter to the demo's shared inbox, as a participant would."""
    from gateway.demo.stack import send_sample_letter
    send_sample_letter(to=to, sender=sender, text=text)
    console.print(f"sent a letter for «{to}» to {get_settings().gateway_address}")


@app.command("demo-reply")
def demo_reply(number: str = typer.Argument(None, help="Letter number (default: the latest)."),
               pages: int = 1) -> None:
    """Have the simulated prisoner answer a letter; the gateway forwards the scan to its writer."""
    from gateway.demo.stack import simulate_reply
    number = simulate_reply(number, pages)
    console.print(f"the prisoner answered letter {number}; the scan reaches its writer within "
                  "a few seconds")


if __name__ == "__main__":
    app()
