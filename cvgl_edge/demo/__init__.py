"""The newcomer's demo, end to end on the CPU: train, export + verify, localise a drone flight.

Everything is built in: no download, no GPU. Stages (``cvgl-edge demo``):

1. train the nano GeoSSM on synthetic ground panorama / satellite tile pairs (the untrained
   model is evaluated first, so the gain is real learning); satellite tiles are
   polar-transformed by default (SAFA), which a 4-layer model learns in minutes;
2. train a second nano on mission-like drone frames against map tiles (the loop's model);
3. export both to ONNX fp32 and verify every file against its checkpoint;
4. write a synthetic mission (map + flight + truth), index the map with the exported model,
5. run the localisation loop over the flight with ONNX Runtime and evaluate it;
6. print a summary (:mod:`cvgl_edge.demo.summary`) and keep every number in OUT/metrics.json.
"""

from cvgl_edge.demo.run import run_demo
from cvgl_edge.demo.settings import DEMO_GROUND_SIZE, DEMO_MODEL, DemoSettings

__all__ = ["DEMO_GROUND_SIZE", "DEMO_MODEL", "DemoSettings", "run_demo"]
