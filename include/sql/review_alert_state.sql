-- Weekly review: incidents open and checks flapping now, per check and subject.
select check_name, subject, incident_open, flapping
from {ops}.alert_state
