"""The actor runtime: actors with bounded mailboxes under OTP-style supervisors.

See ``_supervisor.py`` for why it is shaped the way it is.
"""

from pycontainerd.api.debug import ActorInfo as ActorInfo

from ._actor import Actor as Actor
from ._actor import Deferred as Deferred
from ._actor import io_limiter as io_limiter
from ._errors import ActorCrashed as ActorCrashed
from ._errors import MailboxClosed as MailboxClosed
from ._errors import MailboxFull as MailboxFull
from ._errors import SupervisorGaveUp as SupervisorGaveUp
from ._keyed import KeyedSupervisor as KeyedSupervisor
from ._mailbox import MailboxStatistics as MailboxStatistics
from ._ref import ActorRef as ActorRef
from ._ref import PendingReply as PendingReply
from ._spec import ChildSpec as ChildSpec
from ._spec import Restart as Restart
from ._spec import Strategy as Strategy
from ._supervisor import Supervisor as Supervisor
from ._tree import format_tree as format_tree
from ._tree import walk_tree as walk_tree
