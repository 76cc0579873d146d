"""`dcdrl node list|info`: ros2node's verbs on the ROS-free runtime (nodes from ros_discovery_info)."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from dcdrl_ros.cli_common import add_graph_arguments, fail, graph_session
from dcdrl_ros.graph import is_hidden_name


def cmd_list(args: argparse.Namespace) -> int:
    with graph_session() as (_runtime, _node, watcher):
        names = sorted(n.full_name for n in watcher.wait(args.spin_time).nodes(include_hidden=args.all))
    if args.count_nodes:
        print(len(names))
    elif names:
        if len(set(names)) < len(names):
            sys.stderr.write('WARNING: Be aware that there are nodes in the graph that share an exact name, '
                             'which can have unintended side effects.\n')
        print(*names, sep='\n')
    return 0


def _print_names_and_types(names_and_types: Any, include_hidden: bool) -> None:
    lines = [f'    {name}: {", ".join(types)}' for name, types in names_and_types
             if include_hidden or not is_hidden_name(name)]
    print(*lines, sep='\n')  # an empty section prints an empty line, as in ros2


def cmd_info(args: argparse.Namespace) -> int:
    name = args.node_name

    def node_ready(graph: Any) -> bool:
        # Discovery of the node's endpoints may trail its announcement: wait until they are all known.
        nodes = graph.find_nodes(name)
        return bool(nodes) and all(gid in graph.endpoints for n in nodes for gid in n.readers | n.writers)

    with graph_session() as (_runtime, _node, watcher):
        graph = watcher.wait(args.spin_time, node_ready)
        count = [n.full_name for n in graph.nodes(include_hidden=args.include_hidden)].count(name)
        if count > 1:
            sys.stderr.write(f'There are {count} nodes in the graph with the exact name "{name}". '
                             'You are seeing information about only one of them.\n')
        if count == 0:
            return fail(f"Unable to find node '{name}'")
        hidden = args.include_hidden
        print(name)
        sections = [
            ('Subscribers', graph.topics_by_node(name, readers=True)),
            ('Publishers', graph.topics_by_node(name, readers=False)),
            ('Service Servers', graph.services_by_node(name, servers=True)),
            ('Service Clients', graph.services_by_node(name, servers=False)),
            ('Action Servers', graph.actions_by_node(name, servers=True)),
            ('Action Clients', graph.actions_by_node(name, servers=False)),
        ]
        for title, names_and_types in sections:
            print(f'  {title}:')
            _print_names_and_types(names_and_types, hidden)
    return 0


def add_arguments(verbs: Any) -> None:
    node = verbs.add_parser('node', help='inspect nodes').add_subparsers(dest='verb', required=True)
    sub = node.add_parser('list', help='nodes on the graph')
    sub.add_argument('-a', '--all', action='store_true', help='hidden nodes too')
    sub.add_argument('-c', '--count-nodes', action='store_true')
    add_graph_arguments(sub)
    sub.set_defaults(handler=cmd_list)
    sub = node.add_parser('info', help="a node's topics, services and actions")
    sub.add_argument('node_name')
    sub.add_argument('--include-hidden', action='store_true')
    add_graph_arguments(sub)
    sub.set_defaults(handler=cmd_info)
