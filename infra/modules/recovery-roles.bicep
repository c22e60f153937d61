// The function app's one control-plane role where the failed-over VMs come up: Contributor on the
// recovery resource group (deployments there make and delete managed disks, NICs, availability sets,
// VMs and the mapping's networks; no narrower built-in role covers all of them), and nothing above it.
// Deployed by main.bicep at resourceGroup(recoveryResourceGroupName) scope.

@description('The function app\'s system-assigned identity.')
param principalId string

var contributor = 'b24988ac-6180-42a0-ab88-20f7382dd24c' // Contributor (built-in)

resource recoveryContributorRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, contributor)
  properties: { principalId: principalId, principalType: 'ServicePrincipal', roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', contributor) }
}
