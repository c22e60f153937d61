// The recovery resource group failed-over VMs come up in. A resource group is a subscription-scoped
// resource, so main.bicep (resource-group scoped) deploys this file as a module at subscription() scope.
// Deploying it over an existing group replaces the group's tags (a PUT): main.bicep's
// createRecoveryResourceGroup=false skips it for a group someone else owns.
targetScope = 'subscription'

@description('Name of the recovery resource group.')
@minLength(1)
@maxLength(90)
param name string

@description('Its region: the target region, where the VMs come up.')
param location string

resource recovery 'Microsoft.Resources/resourceGroups@2025-04-01' = {
  name: name
  location: location
  tags: { 'standby-recovery': 'true' }
}
