package queue

import (
	"fmt"
	"path"
	"strings"
)

// Route sends tasks whose name matches Pattern to a queue with default
// options (Celery's task_routes). Pattern is an exact task name or a glob
// in path.Match syntax, such as "emails.*" or "reports.?.build".
//
// Precedence, from strongest to weakest: the options given at the call,
// the task's own defaults (TaskOptioner), the route, then the package
// defaults (queue "default"). Among routes an exact name beats a glob, and
// among globs the first in the table wins.
type Route struct {
	Pattern string
	Options Options
}

// router resolves task names against a route table.
type router struct {
	exact map[string]Options
	globs []Route
}

func newRouter(routes []Route) (*router, error) {
	r := &router{exact: map[string]Options{}}
	for i, rt := range routes {
		if rt.Pattern == "" {
			return nil, fmt.Errorf("Routes[%d]: Pattern is empty", i)
		}
		if _, err := path.Match(rt.Pattern, ""); err != nil {
			return nil, fmt.Errorf("Routes[%d]: bad pattern %q: %w", i, rt.Pattern, err)
		}
		if err := validateOptions(rt.Options); err != nil {
			return nil, fmt.Errorf("Routes[%d] (%s): %w", i, rt.Pattern, err)
		}
		if !strings.ContainsAny(rt.Pattern, `*?[\`) {
			if _, dup := r.exact[rt.Pattern]; !dup {
				r.exact[rt.Pattern] = rt.Options
			}
			continue
		}
		r.globs = append(r.globs, rt)
	}
	return r, nil
}

// match returns the options of the route for task, if any.
func (r *router) match(task string) (Options, bool) {
	if o, ok := r.exact[task]; ok {
		return o, true
	}
	for _, rt := range r.globs {
		if ok, _ := path.Match(rt.Pattern, task); ok {
			return rt.Options, true
		}
	}
	return Options{}, false
}
