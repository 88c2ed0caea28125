"""`acoustack deployment start|stop|status` and `acoustack status`, through the scheduler's Control API.

The scheduler is found at --control, else $ACOUSTACK_CONTROL, else 127.0.0.1:50054.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from google.protobuf import json_format

from acoustack.cli import paint
from acoustack.clients import GrpcClient, RetryPolicy
from acoustack.v1 import control_pb2, control_pb2_grpc

DEFAULT_CONTROL = "127.0.0.1:50054"


def _control(args: argparse.Namespace) -> tuple[GrpcClient, control_pb2_grpc.ControlStub]:
    target = args.control or os.environ.get("ACOUSTACK_CONTROL") or DEFAULT_CONTROL
    client = GrpcClient(target, retry=RetryPolicy(budget_s=5), call_timeout_s=args.timeout)
    return client, control_pb2_grpc.ControlStub(client.channel)


def _print_json(message: Any) -> None:
    print(json.dumps(json_format.MessageToDict(message, preserving_proto_field_name=True)))


def _when(timestamp) -> str:
    return timestamp.ToDatetime().strftime("%Y-%m-%d %H:%M:%S UTC")


def _deployment_line(deployment) -> str:
    where = (
        f" at {deployment.latitude:.4f}, {deployment.longitude:.4f}"
        if deployment.HasField("latitude") and deployment.HasField("longitude")
        else " (no coordinates)"
    )
    state = f"ended {_when(deployment.ended_at)}" if deployment.HasField("ended_at") else "active"
    return f"{deployment.name}{where}, started {_when(deployment.started_at)}, {state}"


def register(commands: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--control", help=f"scheduler address (default $ACOUSTACK_CONTROL or {DEFAULT_CONTROL})"
    )
    common.add_argument("--json", action="store_true", help="print JSON")
    common.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for the scheduler"
    )

    deployment = commands.add_parser("deployment", help="start, stop or show the deployment")
    actions = deployment.add_subparsers(dest="action", metavar="ACTION", required=True)
    start = actions.add_parser("start", parents=[common], help="start a deployment (checks first)")
    start.add_argument("--name", required=True, help="what this deployment is called")
    start.add_argument("--latitude", type=float, help="degrees, -90..90")
    start.add_argument("--longitude", type=float, help="degrees, -180..180")
    start.add_argument("--skip-checks", action="store_true", help="deploy without the checks")
    start.set_defaults(handler=start_deployment)
    stop = actions.add_parser(
        "stop", parents=[common], help="flush the work in flight, then end the deployment"
    )
    stop.add_argument(
        "--flush-timeout", type=float, default=120.0, help="seconds to wait for work in flight"
    )
    stop.set_defaults(handler=stop_deployment)
    show = actions.add_parser("status", parents=[common], help="the active deployment")
    show.set_defaults(handler=deployment_status)

    status = commands.add_parser(
        "status", parents=[common], help="services, queues, last recording and detection"
    )
    status.set_defaults(handler=show_status)

    checks = commands.add_parser(
        "check", parents=[common], help="a verdict for each component before deploying"
    )
    checks.set_defaults(handler=run_checks)

    task = commands.add_parser("task", help="the program's periodic tasks")
    task_actions = task.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = task_actions.add_parser(
        "list", parents=[common], help="each task, its queue and schedule"
    )
    listing.set_defaults(handler=list_tasks)
    run = task_actions.add_parser(
        "run", parents=[common], help="run a task now, outside its schedule"
    )
    run.add_argument("name", help="a task from `task list`, e.g. record")
    run.add_argument(
        "--profile",
        action="store_true",
        help="run it under the profiler and show where its time went (waits for it to finish)",
    )
    run.set_defaults(handler=run_task)

    messages = commands.add_parser(
        "messages",
        parents=[common],
        help="the outbox by delivery state and its dead letters; retry them",
    )
    messages.add_argument(
        "--dead-limit", type=int, default=20, help="the newest dead letters shown (0..1000)"
    )
    messages.set_defaults(handler=show_messages)
    message_actions = messages.add_subparsers(dest="action", metavar="ACTION")
    retry = message_actions.add_parser(
        "retry", parents=[common], help="send dead letters (or messages backing off) again"
    )
    retry.add_argument("message_ids", nargs="*", metavar="ID", help="message ids")
    retry.add_argument("--all-dead", action="store_true", help="every dead letter")
    retry.set_defaults(handler=retry_messages, usage_error=retry.error)

    config = commands.add_parser("config", help="the program's configuration")
    config_actions = config.add_subparsers(dest="action", metavar="ACTION", required=True)
    get = config_actions.add_parser(
        "get", parents=[common], help="show the configuration or one field"
    )
    get.add_argument("--field", default="", help="dotted path, e.g. recording.duration_s")
    get.set_defaults(handler=get_config)
    put = config_actions.add_parser(
        "set", parents=[common], help="change one field (validated, applied at once)"
    )
    put.add_argument("--field", required=True, help="dotted path, e.g. recording.duration_s")
    put.add_argument("value", help="the new value: JSON (20, true, null) or text")
    put.set_defaults(handler=set_config)


def _call(args, method: str, request):
    client, stub = _control(args)
    with client:
        return client.call(getattr(stub, method), request, name=method)


def start_deployment(args: argparse.Namespace) -> int:
    request = control_pb2.ControlStartDeploymentRequest(
        name=args.name,
        latitude=args.latitude,
        longitude=args.longitude,
        skip_checks=args.skip_checks,
    )
    reply = _call(args, "StartDeployment", request)
    if args.json:
        _print_json(reply)
        return 0
    for check in reply.checks:
        mark = paint("ok", "32") if check.ok else paint("FAILED", "31")
        print(f"  {check.component}: {mark} {check.detail}")
    print(f"started: {_deployment_line(reply.deployment)}")
    return 0


def stop_deployment(args: argparse.Namespace) -> int:
    reply = _call(
        args,
        "StopDeployment",
        control_pb2.ControlStopDeploymentRequest(flush_timeout_s=args.flush_timeout),
    )
    if args.json:
        _print_json(reply)
        return 0
    for step in reply.flush_steps:
        print(f"  {step}")
    print(f"stopped: {_deployment_line(reply.deployment)}")
    if reply.flush_left:
        print(paint("not finished in time: " + "; ".join(reply.flush_left), "33", None))
    return 0


def deployment_status(args: argparse.Namespace) -> int:
    reply = _call(args, "GetStatus", control_pb2.GetStatusRequest())
    if args.json:
        _print_json(
            reply.deployment
            if reply.HasField("deployment")
            else control_pb2.GetStatusResponse().deployment
        )
        return 0
    print(
        _deployment_line(reply.deployment)
        if reply.HasField("deployment")
        else "no active deployment"
    )
    return 0 if reply.HasField("deployment") else 1


def show_status(args: argparse.Namespace) -> int:
    reply = _call(args, "GetStatus", control_pb2.GetStatusRequest())
    if args.json:
        _print_json(reply)
        return 0
    print(f"program: {reply.program}")
    healthy = reply.device_status == "ok"
    print(f"device: {paint(reply.device_status, '32' if healthy else '31')} ({reply.device_id})")
    print(
        "deployment: "
        + (_deployment_line(reply.deployment) if reply.HasField("deployment") else "none")
    )
    for service in reply.services:
        colour = "32" if service.health == "SERVING" else "31"
        print(f"  {service.name:<10} {paint(service.health, colour)} ({service.target})")
    print("queues:")
    for queue in reply.queues:
        workers = f"{queue.workers}/{queue.expected_workers} worker(s)"
        short = queue.workers < queue.expected_workers or (queue.waiting and not queue.workers)
        print(
            f"  {queue.name:<10} {queue.waiting:>5} waiting, {paint(workers, '33') if short else workers}"
        )
    if reply.HasField("last_recording"):
        r = reply.last_recording
        print(f"last recording: {_when(r.started_at)} {r.path}")
    else:
        print("last recording: none")
    if reply.HasField("last_model_output"):
        o = reply.last_model_output
        print(
            f"last detection: {o.model_name} found {len(o.detections)} in recording {o.recording_id}"
        )
    if reply.HasField("last_message_sent"):
        sent = reply.last_message_sent
        print(f"last message sent: {_when(sent.received_at)} (message {sent.message_id})")
    else:
        print("last message sent: none")
    outbox = reply.outbox
    print(
        f"unsent messages: {reply.unsent_messages} (due {outbox.due}, backing off "
        f"{outbox.backing_off}, dead letters {outbox.dead}; acoustack messages)"
    )
    print(f"free disk: {reply.free_disk_gb:.1f} GB")
    print(
        f"retention: {retention_line(reply.retention) if reply.HasField('retention') else 'not run yet'}"
    )
    return 0


def retention_line(state) -> str:
    """What retention deleted and why, in a line: the user's answer to "where did my files go"."""
    rules = []
    if state.max_age_days > 0:
        rules.append(f"older than {state.max_age_days:g} days")
    if state.keep_free_mb > 0:
        rules.append(f"the least valuable first while under {state.keep_free_mb} MB free")
    if not rules:
        return "off (nothing is deleted: the card will fill)"
    hours = state.window_s / 3600
    deleted = (
        f"deleted {state.deleted_for_space} for space and {state.deleted_for_age} for age "
        f"in the last {hours:g} h"
    )
    if state.deleted_for_space and state.highest_deleted_score >= 0:
        deleted += f" (best detection score of those up to {state.highest_deleted_score:.2f})"
    elif state.deleted_for_space:
        deleted += " (none of them had a detection)"
    keeps = f"keeps the best {state.keep_best_per_species} of each species"
    line = f"{deleted}; deletes {' and '.join(rules)}; {keeps}"
    if state.short_of_free_mb > 0:
        line += f"; {state.short_of_free_mb:.0f} MB short of the floor with nothing left to delete"
    return line


def run_checks(args: argparse.Namespace) -> int:
    reply = _call(args, "RunChecks", control_pb2.RunChecksRequest())
    if args.json:
        _print_json(reply)
    else:
        for check in reply.checks:
            mark = paint("ok", "32") if check.ok else paint("FAILED", "31")
            print(f"{check.component:<28} {mark}  {check.detail}")
    return 0 if all(c.ok for c in reply.checks) else 1


def list_tasks(args: argparse.Namespace) -> int:
    reply = _call(args, "ListTasks", control_pb2.ListTasksRequest())
    if args.json:
        _print_json(reply)
        return 0
    print(f"{'name':<16} {'queue':<10} schedule")
    for t in reply.tasks:
        offset = f" + {t.offset_s:g} s" if t.offset_s else ""
        print(f"{t.name:<16} {t.queue:<10} every {t.interval_s:g} s{offset}   ({t.task})")
    return 0


def run_task(args: argparse.Namespace) -> int:
    request = control_pb2.RunTaskRequest(
        name=args.name,
        profile=args.profile,
        # The scheduler gives up a little before this command does, so its answer gets through.
        profile_timeout_s=max(1.0, args.timeout - 5.0),
    )
    reply = _call(args, "RunTask", request)
    profile = json.loads(reply.profile_json) if reply.profile_json else None
    if args.json:
        print(json.dumps({"task_id": reply.task_id, "queue": reply.queue, "profile": profile}))
        return 0
    print(f"sent {args.name} to queue {reply.queue} (task id {reply.task_id})")
    if profile is None:
        return 0
    print(
        f"{profile['task']} on {profile['worker']}: {profile['outcome']} in "
        f"{profile['wall_s'] * 1000:.1f} ms ({profile['cpu_s'] * 1000:.1f} ms CPU)"
    )
    print(f"  result: {json.dumps(profile['result'])}")
    print(f"  {'cumulative':>12} {'own':>10} {'calls':>7}  function")
    for row in profile["functions"]:
        print(
            f"  {row['cumulative_s'] * 1000:10.1f}ms {row['own_s'] * 1000:8.1f}ms "
            f"{row['calls']:7d}  {row['function']}"
        )
    return 0 if profile["outcome"] == "SUCCESS" else 1


def get_config(args: argparse.Namespace) -> int:
    reply = _call(args, "GetConfig", control_pb2.GetConfigRequest(field=args.field))
    value = json.loads(reply.value_json)
    print(
        json.dumps(value)
        if args.json or not isinstance(value, dict)
        else json.dumps(value, indent=2)
    )
    return 0


def set_config(args: argparse.Namespace) -> int:
    reply = _call(
        args, "SetConfig", control_pb2.SetConfigRequest(field=args.field, value=args.value)
    )
    value = json.loads(reply.value_json)
    print(json.dumps(value) if args.json else f"{args.field} = {json.dumps(value)}")
    return 0


_STATUS_NAMES = {1: "success", 2: "failed", 3: "error", 4: "timeout"}


def show_messages(args: argparse.Namespace) -> int:
    reply = _call(args, "GetOutbox", control_pb2.GetOutboxRequest(dead_limit=args.dead_limit))
    if args.json:
        _print_json(reply)
        return 0
    counts = reply.counts
    next_try = (
        f" (next try {_when(counts.next_attempt_at)})" if counts.HasField("next_attempt_at") else ""
    )
    print(
        f"outbox: {counts.due} due, {counts.backing_off} backing off{next_try}, "
        f"{counts.dead} dead letter(s), {counts.sent} sent"
    )
    if not counts.dead:
        return 0
    shown = len(reply.dead_letters)
    print(f"dead letters (the newest {shown} of {counts.dead}):")
    for entry in reply.dead_letters:
        m = entry.message
        print(
            f"  {m.id}  dead since {_when(m.dead_at)}, created {_when(m.created_at)}, "
            f"{m.refusals} refusal(s) in {m.attempts} attempt(s)"
        )
        if entry.HasField("last_response"):
            r = entry.last_response
            status = _STATUS_NAMES.get(r.status, str(r.status))
            print(f"      last response ({status}, {_when(r.received_at)}): {r.content}")
    print(
        "send one again: acoustack messages retry ID    all of them: acoustack messages retry "
        "--all-dead"
    )
    return 0


def retry_messages(args: argparse.Namespace) -> int:
    if not args.message_ids and not args.all_dead:
        args.usage_error(
            "name the message ids to send again, or --all-dead (acoustack messages lists the "
            "dead letters)"
        )
    request = control_pb2.ControlRetryMessagesRequest(
        message_ids=args.message_ids, all_dead=args.all_dead
    )
    reply = _call(args, "RetryMessages", request)
    if args.json:
        _print_json(reply)
        return 0
    print(f"{len(reply.message_ids)} message(s) due again at the next messaging run")
    for message_id in reply.message_ids:
        print(f"  {message_id}")
    return 0
