"""The Cyclone configuration our runtime builds: rmw_cyclonedds_cpp's (Jazzy) for the same ROS 2
variables, plus what Cyclone 11 needs to meet Cyclone 0.10 peers on one machine (runtime/interfaces.py).

The mixed-graph system tests (test/test_ros2_mixed_graph.py) show the effect against real ROS 2.
"""
import os

import pytest

from dcdrl_ros.runtime import interfaces as ifs
from dcdrl_ros.runtime.context import PEER_PINGING, discovery_config

ETH = ifs.NetworkInterface('eth0', up=True, loopback=False, has_ipv4=True)
LO = ifs.NetworkInterface('lo', up=True, loopback=True, has_ipv4=True)
DOWN = ifs.NetworkInterface('ifb0', up=False, loopback=False, has_ipv4=False)
NO_ADDRESS = ifs.NetworkInterface('veth1', up=True, loopback=False, has_ipv4=False)


def test_subnet_uses_fixed_participant_indices_like_rmw_cyclonedds():
    # rmw_cyclonedds writes <ParticipantIndex>auto for SUBNET even without peers: a LOCALHOST peer
    # finds such a participant on its well-known unicast port. Without it, Cyclone picks a random port.
    for environ in ({}, {'ROS_AUTOMATIC_DISCOVERY_RANGE': 'SUBNET'}):
        xml = discovery_config(environ, interfaces=[LO, ETH])
        assert '<ParticipantIndex>auto</ParticipantIndex><MaxAutoParticipantIndex>32</MaxAutoParticipantIndex>' in xml
        assert 'AllowMulticast' not in xml and '<Peers>' not in xml


def test_localhost_turns_multicast_off_and_pings_localhost_for_as_long_as_it_runs():
    xml = discovery_config({'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'}, interfaces=[LO, ETH])
    assert '<AllowMulticast>false</AllowMulticast>' in xml
    assert '<Peers><Peer address="localhost"/></Peers>' + PEER_PINGING in xml
    assert '<InitialLocatorPruneDelay>inf</InitialLocatorPruneDelay>' in PEER_PINGING
    assert ifs.LOOPBACK_INTERFACES in xml
    assert discovery_config({'ROS_LOCALHOST_ONLY': '1'}, interfaces=[LO, ETH]) == xml  # the deprecated spelling


def test_static_peers_are_pinged_too_and_off_and_system_default_add_nothing():
    xml = discovery_config({'ROS_STATIC_PEERS': '192.0.2.7; 192.0.2.8'}, interfaces=[LO, ETH])
    assert '<Peer address="192.0.2.7"/><Peer address="192.0.2.8"/></Peers>' + PEER_PINGING in xml
    off = discovery_config({'ROS_AUTOMATIC_DISCOVERY_RANGE': 'OFF', 'ROS_STATIC_PEERS': '192.0.2.7'},
                           interfaces=[LO, ETH])
    assert f'<Tag>ros_discovery_off_{os.getpid()}</Tag>' in off and 'Peer' not in off and 'Interfaces' not in off
    system = discovery_config({'ROS_AUTOMATIC_DISCOVERY_RANGE': 'SYSTEM_DEFAULT'}, interfaces=[LO, ETH])
    assert system == ('<CycloneDDS><Domain><Internal><MaxSampleSize>16MiB</MaxSampleSize></Internal></Domain>'
                      '</CycloneDDS>')
    with pytest.raises(ValueError, match='ROS_AUTOMATIC_DISCOVERY_RANGE must be one of'):
        discovery_config({'ROS_AUTOMATIC_DISCOVERY_RANGE': 'EVERYWHERE'})


def test_loopback_is_enabled_beside_the_automatic_interface_only_where_there_is_one():
    assert ifs.interfaces_config({}, [LO, ETH, DOWN]) == ifs.LOOPBACK_INTERFACES
    # Only loopback usable: Cyclone's automatic choice is lo already, and it refuses lo twice.
    assert ifs.interfaces_config({}, [LO]) == ''
    assert ifs.interfaces_config({}, [LO, DOWN, NO_ADDRESS]) == ''
    assert ifs.has_external_interface([ETH]) and not ifs.has_external_interface([LO, DOWN, NO_ADDRESS])


def test_a_users_own_interfaces_win_inline_or_in_a_file(tmp_path):
    own = ('<CycloneDDS><Domain><General><Interfaces><NetworkInterface name="wlan0"/></Interfaces></General>'
           '</Domain></CycloneDDS>')
    assert ifs.interfaces_config({'CYCLONEDDS_URI': own}, [LO, ETH]) == ''
    path = tmp_path / 'cyclone.xml'
    path.write_text(own)
    for uri in (f'file://{path}', str(path), f'<CycloneDDS/>,file://{path}'):
        assert ifs.interfaces_config({'CYCLONEDDS_URI': uri}, [LO, ETH]) == '', uri
    xml = discovery_config({'CYCLONEDDS_URI': f'file://{path}'}, interfaces=[LO, ETH])
    assert 'Interfaces' not in xml.split(',')[0] and xml.endswith(f',file://{path}')
    # A file that only sets something else leaves our interfaces in; an unreadable one is Cyclone's to report.
    other = tmp_path / 'tracing.xml'
    other.write_text('<CycloneDDS><Domain><Tracing><Verbosity>fine</Verbosity></Tracing></Domain></CycloneDDS>')
    assert ifs.interfaces_config({'CYCLONEDDS_URI': str(other)}, [LO, ETH]) == ifs.LOOPBACK_INTERFACES
    missing = {'CYCLONEDDS_URI': str(tmp_path / 'missing.xml')}
    assert ifs.interfaces_config(missing, [LO, ETH]) == ifs.LOOPBACK_INTERFACES


def test_this_machines_interfaces_can_be_read_and_include_loopback():
    found = ifs.list_interfaces()
    assert found is not None
    assert any(i.loopback and i.up and i.has_ipv4 for i in found)
