"""A model server for tests that answers as the test tells it: each status code, never, or a
malformed output (the failure tests of the Model contract, and `acoustack model check`'s own)."""

from __future__ import annotations

import threading
import time

import grpc

from acoustack.v1 import model_pb2, model_pb2_grpc, types_pb2


class ScriptedModelServer(model_pb2_grpc.ModelServicer):
    """Each Detect / DetectStream call takes the next of ``answers`` (the last one repeats): a
    status code (the call fails with it), ``HANG`` (it never answers: it waits until the client
    gives up), a ModelOutput to return, or None (a response without an output)."""

    HANG = "hang"

    def __init__(self) -> None:
        self.answers: list = [good_output()]
        self.calls = 0
        self.info = model_pb2.InfoResponse(name="scripted", version="0.1", classes=["bat"])
        self._lock = threading.Lock()

    def Info(self, request, context):
        return self.info

    def _answer(self, context):
        with self._lock:
            answer = self.answers[min(self.calls, len(self.answers) - 1)]
            self.calls += 1
        if answer == self.HANG:
            deadline = time.monotonic() + 30  # bounded, should the client never go away
            while context.is_active() and time.monotonic() < deadline:
                time.sleep(0.02)
            context.abort(grpc.StatusCode.CANCELLED, "gave up")
        if isinstance(answer, grpc.StatusCode):
            context.abort(answer, f"scripted {answer.name.lower()}")
        return answer

    def Detect(self, request, context):
        return model_pb2.DetectResponse(model_output=self._answer(context))

    def DetectStream(self, request_iterator, context):
        for _ in request_iterator:
            pass
        return model_pb2.DetectStreamResponse(model_output=self._answer(context))


def good_output(detections: int = 4) -> types_pb2.ModelOutput:
    """What a well-behaved server answers for a 0.5 s recording."""
    output = types_pb2.ModelOutput()
    for i in range(detections):
        output.detections.add(
            prediction_type=types_pb2.PREDICTION_TYPE_EVENT,
            box=types_pb2.BoundingBox(
                start_time_s=0.1 * i,
                end_time_s=0.1 * i + 0.005,
                low_freq_hz=40e3,
                high_freq_hz=60e3,
            ),
            detection_score=0.9,
            tags=[types_pb2.PredictedTag(tag=types_pb2.Tag(key="species", value="Myotis"))],
        )
    return output
