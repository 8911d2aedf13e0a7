// A no-op stand-in for gitlab.com/gitlab-org/labkit, which the Go module proxy does not
// serve: it provides only the symbols the Gitaly packages the test peer imports need.
module gitlab.com/gitlab-org/labkit

go 1.24

require google.golang.org/grpc v1.77.0
