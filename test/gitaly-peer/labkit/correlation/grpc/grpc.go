// Package grpccorrelation stands in for labkit's package of the same path. The test peer
// never dials out, so its interceptors pass calls through unchanged.
package grpccorrelation

import (
	"context"

	"google.golang.org/grpc"
)

// ClientCorrelationInterceptorOption configures the interceptors (ignored here).
type ClientCorrelationInterceptorOption func()

// UnaryClientCorrelationInterceptor passes unary calls through.
func UnaryClientCorrelationInterceptor(...ClientCorrelationInterceptorOption) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

// StreamClientCorrelationInterceptor passes streaming calls through.
func StreamClientCorrelationInterceptor(...ClientCorrelationInterceptorOption) grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		return streamer(ctx, desc, cc, method, opts...)
	}
}
