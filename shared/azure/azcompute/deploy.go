package azcompute

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/standby-dr/standby/shared/azure/azarm"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
	"github.com/standby-dr/standby/shared/recovery"
	"github.com/standby-dr/standby/shared/replication"
)

// requestTag holds, on each deployment, the SHA-256 of the request it was made from: ARM returns a
// deployment's parameters re-typed and its template only as a hash of its own, so our digest is what
// tells "the same request again" from "another request under the same name".
const requestTag = "standby-request-sha256"

// Deploy validates the deployment (POST …/deployments/{name}/validate) and starts it (PUT, mode
// Incremental: Complete would delete whatever else the resource group holds) without waiting for it.
// A deployment of that name made from the same request that succeeded or is still running is left as
// it is, so a redelivered job step changes nothing.
func (c *Compute) Deploy(ctx context.Context, rg, name string, req recovery.DeploymentRequest) error {
	digest, err := requestDigest(req)
	if err != nil {
		return err
	}
	existing, err := c.deployments.Get(ctx, rg, name, nil)
	switch err = azarm.Translate(err, "reading deployment "+name); {
	case err == nil:
		if p := existing.Properties; p != nil && str(existing.Tags[requestTag]) == digest {
			if st := stateOf(p.ProvisioningState); st != recovery.DeploymentFailed {
				c.Log.Info("deployment already made from this request", "resourceGroup", rg, "deployment", name, "state", st)
				return nil
			}
		}
	case !errors.Is(err, replication.ErrNotFound):
		return err
	}
	dep := armresources.Deployment{
		Properties: &armresources.DeploymentProperties{Mode: to.Ptr(armresources.DeploymentModeIncremental),
			Template: req.Properties.Template, Parameters: req.Properties.Parameters},
		Tags: map[string]*string{requestTag: to.Ptr(digest)},
	}
	if err := c.validate(ctx, rg, name, dep); err != nil {
		return err
	}
	if _, err := c.deployments.BeginCreateOrUpdate(ctx, rg, name, dep, nil); err != nil {
		return refusal(err, "deployment "+name)
	}
	c.Log.Info("deployment started", "resourceGroup", rg, "deployment", name, "resources", len(req.Properties.Template.Resources))
	return nil
}

// requestDigest is the hash of what is deployed: mode, template and parameter values (encoding/json
// writes map keys sorted, so equal requests hash equal).
func requestDigest(req recovery.DeploymentRequest) (string, error) {
	req.Properties.Mode = string(armresources.DeploymentModeIncremental)
	data, err := json.Marshal(req)
	if err != nil {
		return "", fmt.Errorf("%w: deployment request: %v", replication.ErrInvalid, err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// validate asks ARM's preflight (template checks, then each provider's) whether the deployment would be
// accepted. It answers 200 with the validated resources, 400 with the refusal, or 202 and a Location to
// poll for either (Deployments_Validate, Microsoft.Resources 2021-04-01).
func (c *Compute) validate(ctx context.Context, rg, name string, dep armresources.Deployment) error {
	poller, err := c.deployments.BeginValidate(ctx, rg, name, dep, nil)
	var res armresources.DeploymentsClientValidateResponse
	if err == nil {
		res, err = poller.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: c.poll()})
	}
	if err != nil {
		return refusal(err, "deployment "+name)
	}
	if res.Error != nil {
		return fmt.Errorf("deployment %s refused by validation: %s: %w", name, replication.Redact(fromSDK(res.Error).Text()), replication.ErrInvalid)
	}
	return nil
}

// refusal is translate, except that what ARM answers a deployment it will not take — 400
// (InvalidTemplate, InvalidTemplateDeployment, a provider's InvalidParameter…), a missing resource group
// (404 ResourceGroupNotFound), or an operation that ended Failed with its reason — is ErrInvalid, with
// ARM's code, message and details: the job fails at once naming the property.
func refusal(err error, what string) error {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		failedLRO := re.StatusCode < 300 // the poller reports a Failed operation with its 200 status
		if re.StatusCode == http.StatusBadRequest || failedLRO || re.ErrorCode == "ResourceGroupNotFound" {
			return fmt.Errorf("%s refused: %s: %w", what, replication.Redact(azarm.ResponseText(re)), replication.ErrInvalid)
		}
	}
	return azarm.Translate(err, what)
}

// Deployment reads the deployment: its provisioning state, its error (code and message with every
// detail) when it failed, and the resources it made (outputResources).
func (c *Compute) Deployment(ctx context.Context, rg, name string) (recovery.DeploymentStatus, error) {
	res, err := c.deployments.Get(ctx, rg, name, nil)
	if err != nil {
		return recovery.DeploymentStatus{}, azarm.Translate(err, "reading deployment "+name)
	}
	p := res.Properties
	if p == nil {
		return recovery.DeploymentStatus{State: recovery.DeploymentRunning}, nil
	}
	st := recovery.DeploymentStatus{State: stateOf(p.ProvisioningState)}
	if st.State == recovery.DeploymentFailed {
		st.Error = "deployment " + string(*p.ProvisioningState)
		if p.Error != nil {
			st.Error = replication.Redact(fromSDK(p.Error).Text())
		}
	}
	for _, r := range p.OutputResources {
		if r != nil && r.ID != nil {
			st.Resources = append(st.Resources, *r.ID)
		}
	}
	return st, nil
}

// stateOf maps ARM's provisioning states: Succeeded, Failed and Canceled end a deployment; every other
// one (Accepted, Running, Creating, Updating…) means it is still going.
func stateOf(s *armresources.ProvisioningState) string {
	switch {
	case s == nil:
		return recovery.DeploymentRunning
	case *s == armresources.ProvisioningStateSucceeded:
		return recovery.DeploymentSucceeded
	case *s == armresources.ProvisioningStateFailed || *s == armresources.ProvisioningStateCanceled:
		return recovery.DeploymentFailed
	}
	return recovery.DeploymentRunning
}

func fromSDK(e *armresources.ErrorResponse) azarm.Error {
	out := azarm.Error{Code: str(e.Code), Message: str(e.Message), Target: str(e.Target)}
	for _, d := range e.Details {
		if d != nil {
			out.Details = append(out.Details, fromSDK(d))
		}
	}
	return out
}
