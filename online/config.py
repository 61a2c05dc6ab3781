"""``ServeConfig``: the shim's settings (YAML ``--config``, ``--set``, ``LORE_*`` env for secrets)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from lore_ml.config import LoreConfig
from lore_ml.inference import InferenceConfig
from lore_ml.modeling import NotAModelDirectory, require_model_directory
from lore_ml.prompts import DEFAULT_RULES_DIGEST, RulesDigest
from lore_ml.students import NotAStudentDirectory, require_student_directory
from online.schemas import MAX_DEADLINE_MS, MAX_ITEMS, MAX_QUERY_CHARS


class ServeConfig(LoreConfig):
    """Run the relevance shim (``lore serve``) or its write-back worker (``lore worker``)."""

    host: str = Field("127.0.0.1", description="Bind address (gunicorn).")
    port: int = Field(8080, ge=1, le=65535)
    workers: int = Field(4, ge=1, description="gunicorn worker processes (two per core: threads of one worker "
                         "share its GIL).")
    threads: int = Field(8, ge=1, description="Threads per gunicorn worker (a tail request holds one while "
                         "it waits for the teacher).")
    max_body_bytes: int = Field(1_000_000, ge=1024, description="Larger bodies get 413.")
    max_items: int = Field(200, ge=1, le=MAX_ITEMS, description="Items per request; more gets 400.")
    max_query_chars: int = Field(256, ge=1, le=MAX_QUERY_CHARS, description="Longer queries get 400.")
    default_deadline_ms: int = Field(150, ge=1, le=MAX_DEADLINE_MS, description="Tail teacher budget when the "
                                     "request gives none.")
    tail_reserve_ms: int = Field(10, ge=0, description="Part of a tail request's deadline kept for the student "
                                 "fallback and the response: the teacher gets deadline - elapsed - this.")
    student_path: Path | None = Field(None, description="Representation student artefact (lore distill writes "
                                      "artifacts/students/current); unset: the lexical student.")
    teacher_url: str | None = Field(None, description="OpenAI-compatible completions server of the teacher "
                                    "(vllm serve ... --logprobs-mode processed_logprobs).")
    teacher_model: str | None = Field(None, description="Model name at teacher_url.")
    teacher_dir: Path | None = Field(None, description="The directory of the checkpoint teacher_url serves: its "
                                     "manifest's version and decision rule label the answers (unset: argmax, "
                                     "version = teacher_model).")
    teacher_api_key: SecretStr | None = Field(None, description="Set through LORE_TEACHER_API_KEY.")
    rules_in_prompt: RulesDigest = Field(DEFAULT_RULES_DIGEST, description="Rules digest of the tail teacher's "
                                         "prompts (as in training).")
    teacher: InferenceConfig | None = Field(None, description="In-process teacher (the small default) when no "
                                            "teacher_url is set; unset: tail requests go to the worker queue.")
    redis_timeout_ms: int = Field(50, ge=1, description="Socket timeout of the shim's Redis calls.")
    redis_retry_s: float = Field(2.0, ge=0, description="After a Redis error, answer without Redis this long.")
    active_version_ttl_s: float = Field(1.0, ge=0, description="How long a worker trusts the active version it read.")
    queue_maxlen: int = Field(100_000, ge=1, description="Approximate cap of the tail write-back stream.")
    worker_batch: int = Field(16, ge=1, description="Stream entries a write-back worker reads at once.")
    worker_block_ms: int = Field(1000, ge=1, description="How long a worker waits for new entries.")
    worker_claim_idle_ms: int = Field(60_000, ge=1, description="Take over entries a dead worker left pending.")
    worker_group: str = Field("lore-writeback", description="Redis consumer group of the workers.")
    worker_redis_retry_max_s: float = Field(10.0, gt=0, description="A worker waits out a Redis outage, trying "
                                            "again with growing pauses of at most this long.")

    @field_validator("student_path")
    @classmethod
    def _a_student(cls, path: Path | None) -> Path | None:
        """Checked here, once: a bad path would otherwise fail every gunicorn worker's boot."""
        if path is not None:
            try:
                require_student_directory(path)
            except NotAStudentDirectory as exc:
                raise ValueError(str(exc)) from None
        return path

    @field_validator("teacher_dir")
    @classmethod
    def _a_directory(cls, path: Path | None) -> Path | None:
        if path is not None and not path.is_dir():
            raise ValueError(f"{path} is not a directory")
        return path

    @field_validator("teacher")
    @classmethod
    def _a_model(cls, teacher: InferenceConfig | None, info: ValidationInfo) -> InferenceConfig | None:
        if teacher is not None and not info.data.get("teacher_url"):  # in-process: the model must be there
            try:
                require_model_directory(teacher.model_path)
            except NotAModelDirectory as exc:
                raise ValueError(f"model_path {exc}") from None
        return teacher
