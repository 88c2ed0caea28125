"""A null model for the pipeline benchmark: the `Model` contract, answered instantly.

Every Detect (or DetectStream) gets the same small output, one event detection with one tag, without
reading the audio, so the pipeline benchmark measures acoustack's plumbing (queues, gRPC, storage),
not a network. The reference (the monolith loop in pipeline.py) runs the same ``null_output`` in
process.

Run: python bench/null_model.py --port PORT  (loopback only; SIGTERM or Ctrl-C stops it)
"""

from __future__ import annotations

import argparse
import logging

from acoustack.grpc_server import start_server, wait_for_termination
from acoustack.v1 import model_pb2, model_pb2_grpc
from acoustack.v1 import types_pb2 as pb

NAME = "null"
VERSION = "1"


def null_output(recording_id: str) -> pb.ModelOutput:
    """One detection scoring above the detector's default threshold (0.2), so the cleaner keeps it
    and the outbox message carries it: the store path does its full work."""
    return pb.ModelOutput(
        recording_id=recording_id,
        model_name=NAME,
        model_version=VERSION,
        detections=[
            pb.Detection(
                prediction_type=pb.PREDICTION_TYPE_EVENT,
                box=pb.BoundingBox(
                    start_time_s=0.01, end_time_s=0.02, low_freq_hz=1000.0, high_freq_hz=2000.0
                ),
                detection_score=0.9,
                tags=[pb.PredictedTag(tag=pb.Tag(key="species", value="null"), confidence=0.9)],
            )
        ],
    )


class NullModelServicer(model_pb2_grpc.ModelServicer):
    def Info(self, request, context):
        return model_pb2.InfoResponse(name=NAME, version=VERSION, samplerate_hz=0, classes=["null"])

    def Detect(self, request, context):
        if request.HasField("recording"):
            recording_id = request.recording.id
        else:
            recording_id = request.audio.header.recording_id
        return model_pb2.DetectResponse(model_output=null_output(recording_id))

    def DetectStream(self, request_iterator, context):
        recording_id = ""
        for part in request_iterator:  # drained, not decoded: the caller waits for the end
            if part.HasField("header"):
                recording_id = part.header.recording_id
        return model_pb2.DetectStreamResponse(model_output=null_output(recording_id))


def register(server) -> str:
    model_pb2_grpc.add_ModelServicer_to_server(NullModelServicer(), server)
    return model_pb2.DESCRIPTOR.services_by_name["Model"].full_name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=4, help="gRPC server threads")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    running = start_server([register], address=f"127.0.0.1:{args.port}", max_workers=args.workers)
    wait_for_termination(running, grace_s=2.0)


if __name__ == "__main__":
    main()
