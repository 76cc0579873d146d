"""`dcdrl service list|type|call`: ros2service's verbs on the ROS-free runtime."""
from __future__ import annotations

import argparse
import time
from typing import Any

import yaml

from dcdrl_ros.cli_common import add_graph_arguments, fail, graph_session, ros_repr


def cmd_list(args: argparse.Namespace) -> int:
    with graph_session() as (_runtime, _node, watcher):
        services = watcher.wait(args.spin_time).service_names_and_types(args.include_hidden_services)
    if args.count_services:
        print(len(services))
        return 0
    for name, types in services:
        print(f'{name} [{", ".join(types)}]' if args.show_types else name)
    return 0


def cmd_type(args: argparse.Namespace) -> int:
    with graph_session() as (_runtime, _node, watcher):
        graph = watcher.wait(args.spin_time, lambda g: args.service_name in dict(g.service_names_and_types(True)))
        types = dict(graph.service_names_and_types(include_hidden=True)).get(args.service_name)
    if not types:
        return fail(f"Unknown service '{args.service_name}'")
    print(*types, sep='\n')
    return 0


def service_class(type_name: str) -> Any:
    """The service class for 'pkg/srv/Name' (or 'pkg/Name'); ValueError with ros2's messages otherwise."""
    from dcdrl_ros.messages import InterfaceNotFoundError, get_interface
    parts = type_name.strip('/').split('/')
    if len(parts) == 2:
        parts = [parts[0], 'srv', parts[1]]
    try:
        cls = get_interface('/'.join(parts))
    except (InterfaceNotFoundError, LookupError, ValueError, IndexError):
        raise ValueError('The passed service type is invalid') from None
    if not (hasattr(cls, 'Request') and hasattr(cls, 'Response')):
        raise ValueError('The passed type is not a service')
    return cls


def cmd_call(args: argparse.Namespace) -> int:
    from dcdrl_ros.message_utils import set_message_fields
    if args.rate is not None and args.rate <= 0:
        return fail('rate must be greater than zero')
    try:
        srv = service_class(args.service_type)
        values = yaml.safe_load(args.values)
    except ValueError as error:
        return fail(str(error))
    except yaml.YAMLError as error:
        return fail(f'The passed value is not valid YAML: {error}')
    spec = srv.Request._spec
    try:
        with graph_session(f'_dcdrl_requester_{spec.package}_{spec.name.rsplit("_", 1)[0]}') as (runtime, node, _w):
            client = node.create_client(srv, args.service_name)
            try:
                request = set_message_fields(srv.Request(), values)
            except (ValueError, TypeError, LookupError) as error:
                return fail(f'Failed to populate field: {error}')
            if not client.service_is_ready():
                print('waiting for service to become available...', flush=True)
                while not client.wait_for_service(timeout_sec=1.0):
                    if not runtime.ok():
                        return 0
            period = 1.0 / args.rate if args.rate else None
            while True:
                print(f'requester: making request: {ros_repr(request)}\n', flush=True)
                started = time.monotonic()
                future = client.call_async(request)
                runtime.spin_until_future_complete(node, future)
                if not future.done():
                    return 0  # shut down while waiting (Ctrl-C)
                if future.exception() is not None:
                    return fail(f'Exception while calling service: {future.exception()!r}')
                print(f'response:\n{ros_repr(future.result())}\n', flush=True)
                if period is None or not runtime.ok():
                    return 0
                time.sleep(max(0.0, started + period - time.monotonic()))
    except KeyboardInterrupt:
        return 0


def add_arguments(verbs: Any) -> None:
    service = verbs.add_parser('service', help='list and call services').add_subparsers(dest='verb', required=True)
    sub = service.add_parser('list', help='services on the graph')
    sub.add_argument('-t', '--show-types', action='store_true')
    sub.add_argument('-c', '--count-services', action='store_true')
    sub.add_argument('--include-hidden-services', action='store_true')
    add_graph_arguments(sub)
    sub.set_defaults(handler=cmd_list)
    sub = service.add_parser('type', help='the type of a service')
    sub.add_argument('service_name')
    add_graph_arguments(sub)
    sub.set_defaults(handler=cmd_type)
    sub = service.add_parser('call', help='call a service')
    sub.add_argument('service_name')
    sub.add_argument('service_type')
    sub.add_argument('values', nargs='?', default='{}', help="request fields in YAML, e.g. '{a: 1}'")
    sub.add_argument('-r', '--rate', type=float, help='repeat the call at N Hz')
    sub.set_defaults(handler=cmd_call)
