package cli

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pgq/pgq/workflow"
)

func newInspectWorkflowCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "workflow ID",
		Short: "Show a workflow's tree (chains, groups, chords, callbacks) with each step's state",
		Long: `Show the tree of the workflow that ID belongs to. ID is the workflow's id (what
workflow.Apply returned) or the id of any of its jobs. Each line is a step: its
id, kind or task, and state; a group shows how many members have not succeeded
yet, a failed step the job that failed first and why. The same rows are in the
pgq.workflow_steps view.`,
		Example: `  pgq inspect workflow 1200
  pgq inspect workflow 1234 --json | jq '.steps[0]'`,
		Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id <= 0 {
				return usageErrorf(cmd, "workflow id %q is not a positive integer", args[0])
			}
			ctx := cmd.Context()
			s, err := a.open(ctx, true)
			if err != nil {
				return err
			}
			defer s.Close()
			tree, err := workflow.Inspect(ctx, s.client, id)
			if errors.Is(err, workflow.ErrNotFound) {
				return fmt.Errorf("%w: %d is neither a workflow nor one of its jobs in schema %s", workflow.ErrNotFound, id, s.schema)
			}
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), tree)
			}
			return writeWorkflow(cmd.OutOrStdout(), tree)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// writeWorkflow prints the tree, one step per line:
//
//	chain 101  failed  (job 103 test.boom failed: boom)
//	├── 102  test.add  succeeded
//	├── 103  test.boom  failed (attempt 3)  boom
//	└── 104  test.add  cancelled
func writeWorkflow(w io.Writer, root *workflow.Step) error {
	var b strings.Builder
	writeStep(&b, root, "", "", "")
	_, err := io.WriteString(w, b.String())
	return err
}

func writeStep(b *strings.Builder, s *workflow.Step, label, first, rest string) {
	b.WriteString(first)
	b.WriteString(label)
	if s.Kind == workflow.KindTask {
		fmt.Fprintf(b, "%d  %s  %s", s.ID, s.Task, s.State)
		if s.Attempt > 1 {
			fmt.Fprintf(b, " (attempt %d)", s.Attempt)
		}
	} else {
		fmt.Fprintf(b, "%s %d  %s", s.Kind, s.ID, s.State)
		if s.Remaining != nil && s.State == "active" {
			fmt.Fprintf(b, "  %d of %d to go", *s.Remaining, len(s.Steps))
		}
	}
	if f := s.Failure; f != nil && (s.State == "failed" || s.State == "cancelled") {
		if f.JobID == s.ID {
			fmt.Fprintf(b, "  %s", oneLine(f.Message, 200))
		} else {
			fmt.Fprintf(b, "  (job %d %s %s: %s)", f.JobID, f.Task, f.State, oneLine(f.Message, 200))
		}
	}
	b.WriteByte('\n')
	type child struct {
		step  *workflow.Step
		label string
	}
	var children []child
	for _, c := range s.Steps {
		children = append(children, child{c, ""})
	}
	for _, c := range s.Callbacks {
		label := "on success: "
		if c.Role == "link_error" {
			label = "on error: "
		}
		children = append(children, child{c, label})
	}
	for i, c := range children {
		if i == len(children)-1 {
			writeStep(b, c.step, c.label, rest+"└── ", rest+"    ")
		} else {
			writeStep(b, c.step, c.label, rest+"├── ", rest+"│   ")
		}
	}
}
