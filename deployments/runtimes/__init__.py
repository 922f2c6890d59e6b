"""Where web services run: the `local` runtime (a supervised process, or a container
when a Docker engine is reachable) and the `kubernetes` one. base.Runtime is the
interface the deployment services call."""
