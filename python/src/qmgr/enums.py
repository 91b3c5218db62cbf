"""The BITS enumerations, with the values of include/bits.h."""

from __future__ import annotations

import enum


class JobState(enum.IntEnum):
    """Where a job is in its life (BG_JOB_STATE)."""

    QUEUED = 0
    CONNECTING = 1
    TRANSFERRING = 2
    SUSPENDED = 3
    ERROR = 4
    TRANSIENT_ERROR = 5
    TRANSFERRED = 6
    ACKNOWLEDGED = 7
    CANCELLED = 8

    @property
    def is_final(self) -> bool:
        """Whether the job stays in this state until someone acts.

        TRANSFERRED waits for ``complete()``, ERROR for ``resume()`` or ``cancel()``;
        ACKNOWLEDGED and CANCELLED are the ends of a job.
        """
        return self in (
            JobState.TRANSFERRED,
            JobState.ERROR,
            JobState.ACKNOWLEDGED,
            JobState.CANCELLED,
        )


class JobType(enum.IntEnum):
    """What a job transfers (BG_JOB_TYPE)."""

    DOWNLOAD = 0
    UPLOAD = 1
    UPLOAD_REPLY = 2


class JobPriority(enum.IntEnum):
    """Which jobs go first (BG_JOB_PRIORITY); FOREGROUND is the highest."""

    FOREGROUND = 0
    HIGH = 1
    NORMAL = 2
    LOW = 3


class ErrorContext(enum.IntEnum):
    """Where a job's error happened (BG_ERROR_CONTEXT)."""

    NONE = 0
    UNKNOWN = 1
    GENERAL_QUEUE_MANAGER = 2
    QUEUE_MANAGER_NOTIFICATION = 3
    LOCAL_FILE = 4
    REMOTE_FILE = 5
    GENERAL_TRANSPORT = 6
    REMOTE_APPLICATION = 7
    SERVER_CERTIFICATE_CALLBACK = 8


class NotifyFlags(enum.IntFlag):
    """Which callbacks a job makes (BG_NOTIFY_*)."""

    JOB_TRANSFERRED = 1
    JOB_ERROR = 2
    DISABLE = 4
    JOB_MODIFICATION = 8
    FILE_TRANSFERRED = 16
    FILE_RANGES_TRANSFERRED = 32


class ProxyUsage(enum.IntEnum):
    """Where a job's proxy settings come from (BG_JOB_PROXY_USAGE)."""

    PRECONFIG = 0
    NO_PROXY = 1
    OVERRIDE = 2
    AUTODETECT = 3


class AuthTarget(enum.IntEnum):
    """Whom credentials are for (BG_AUTH_TARGET)."""

    SERVER = 1
    PROXY = 2


class AuthScheme(enum.IntEnum):
    """How credentials are presented (BG_AUTH_SCHEME)."""

    BASIC = 1
    DIGEST = 2
    NTLM = 3
    NEGOTIATE = 4
    PASSPORT = 5


class JobProperty(enum.IntEnum):
    """The properties of IBackgroundCopyJob5::SetProperty (BITS_JOB_PROPERTY_ID)."""

    ID_COST_FLAGS = 1
    NOTIFICATION_CLSID = 2
    DYNAMIC_CONTENT = 3
    HIGH_PERFORMANCE = 4
    MAX_DOWNLOAD_SIZE = 5
    USE_STORED_CREDENTIALS = 7
    MINIMUM_NOTIFICATION_INTERVAL_MS = 9
    ON_DEMAND_MODE = 10


class CertStoreLocation(enum.IntEnum):
    """Where a client certificate's store is (BG_CERT_STORE_LOCATION). qmgr keeps every
    store under ``$XDG_CONFIG_HOME/qmgr/certs/``; the location is kept with the job."""

    CURRENT_USER = 0
    LOCAL_MACHINE = 1
    CURRENT_SERVICE = 2
    SERVICES = 3
    USERS = 4
    CURRENT_USER_GROUP_POLICY = 5
    LOCAL_MACHINE_GROUP_POLICY = 6
    LOCAL_MACHINE_ENTERPRISE = 7
