package ops

import "context"

type actorKey struct{}

// WithActor returns a context naming who is making the request; the auth middleware sets it
// so that every action is recorded in the ledger history with who did it.
func WithActor(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, actorKey{}, name)
}

// Actor names who is making the request: the authenticated token's name, or "anonymous"
// when access control is off.
func Actor(ctx context.Context) string {
	if v, ok := ctx.Value(actorKey{}).(string); ok && v != "" {
		return v
	}
	return "anonymous"
}
