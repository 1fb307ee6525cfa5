# SPDX-License-Identifier: Apache-2.0
"""``motion_instances`` and ``moving_objects``: the instance stage's result as ROS messages.

``motion_instances`` is the id map (mono16, 0 background) with the input image's header.
``moving_objects`` is a visualization_msgs/MarkerArray in the image's (optical) frame, per object
id: its box, back-projected through the camera matrix onto the plane at the object's depth (depth
1 when the backend gives no 3D points: the box then only gives directions), and its id as a text
label; with 3D points also its centroid (a sphere) and velocity (an arrow to where it will be in
one second). 3D positions and velocities have the scale of the backend's poses (monocular:
arbitrary). Objects that leave the frame or whose tracks end are deleted.
"""
from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point
from sensor_msgs.msg import Image
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from geomotion_core.instances import InstanceFrame, InstanceObject
from geomotion_core.io.palette import id_colours
from geomotion_ros.conversions import array_to_image

NAMESPACES = ("box", "label", "centroid", "velocity")
UNKNOWN_DEPTH = 1.0  # the plane boxes are drawn on when the object's depth is not known
LINE_WIDTH = 0.005  # of the box outline, per unit of depth
SPHERE_SIZE = 0.03  # of the centroid, per unit of depth
TEXT_HEIGHT = 0.04  # of the id label, per unit of depth


def instance_image(ids: np.ndarray, header: Header) -> Image:
    """mono16 id map (0 background) with the input image's header."""
    return array_to_image(ids.astype(np.uint16, copy=False), "mono16", header)


def object_markers(frame: InstanceFrame, header: Header, intrinsics: np.ndarray, restart: bool = False) -> MarkerArray:
    """The markers of one frame's objects, after DELETE markers for the ids that are gone.

    ``restart`` (a new stream: ids start again) deletes every marker of the namespace first.
    """
    markers = []
    if restart:
        markers.append(_marker(header, "", 0, Marker.DELETEALL))
    for gone in sorted(set(frame.vanished) | set(frame.ended)):
        markers += [_marker(header, namespace, gone, Marker.DELETE) for namespace in NAMESPACES]
    for item in frame.objects:
        markers += _object(item, header, intrinsics)
    return MarkerArray(markers=markers)


def _object(item: InstanceObject, header: Header, intrinsics: np.ndarray) -> list[Marker]:
    colour = ColorRGBA(**dict(zip("rgb", (id_colours(np.array([item.id]))[0] / 255.0).tolist())), a=1.0)
    depth = item.centroid_3d[2] if item.centroid_3d is not None and item.centroid_3d[2] > 0 else UNKNOWN_DEPTH
    x, y, width, height = item.box
    corners = [(x, y), (x + width, y), (x + width, y + height), (x, y + height), (x, y)]
    box = _marker(header, "box", item.id, Marker.ADD, Marker.LINE_STRIP, colour)
    box.points = [_point(_back_project(u, v, depth, intrinsics)) for u, v in corners]
    box.scale.x = LINE_WIDTH * depth
    white = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
    label = _marker(header, "label", item.id, Marker.ADD, Marker.TEXT_VIEW_FACING, white)
    label.text = str(item.id)
    label.pose.position = _point(_back_project(x, y - 2, depth, intrinsics))
    label.scale.z = TEXT_HEIGHT * depth
    result = [box, label]
    if item.centroid_3d is None:
        return result + [_marker(header, namespace, item.id, Marker.DELETE) for namespace in ("centroid", "velocity")]
    centre = np.asarray(item.centroid_3d)
    sphere = _marker(header, "centroid", item.id, Marker.ADD, Marker.SPHERE, colour)
    sphere.pose.position = _point(centre)
    sphere.scale.x = sphere.scale.y = sphere.scale.z = SPHERE_SIZE * depth
    result.append(sphere)
    if item.velocity_3d is None:
        return result + [_marker(header, "velocity", item.id, Marker.DELETE)]
    arrow = _marker(header, "velocity", item.id, Marker.ADD, Marker.ARROW, colour)
    arrow.points = [_point(centre), _point(centre + np.asarray(item.velocity_3d))]  # where it is in one second
    arrow.scale.x, arrow.scale.y = LINE_WIDTH * depth, 2 * LINE_WIDTH * depth
    return result + [arrow]


def _marker(header: Header, namespace: str, marker_id: int, action: int, kind: int = Marker.CUBE,
            colour: ColorRGBA | None = None) -> Marker:
    marker = Marker(header=header, ns=namespace, id=int(marker_id), type=kind, action=action, lifetime=Duration())
    marker.pose.orientation.w = 1.0
    if colour is not None:
        marker.color = colour
    return marker


def _back_project(u: float, v: float, depth: float, intrinsics: np.ndarray) -> np.ndarray:
    """The optical-frame point at ``depth`` seen at pixel ``(u, v)``."""
    return depth * np.linalg.solve(intrinsics, np.array([u, v, 1.0]))


def _point(values: np.ndarray) -> Point:
    return Point(x=float(values[0]), y=float(values[1]), z=float(values[2]))
