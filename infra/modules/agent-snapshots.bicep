// The agent's rights for managed: tracking in one source resource group (where the disks and their
// incremental snapshots are): exactly the actions shared/azure/azsnapshots takes — read a disk; put,
// read and delete its snapshots; grant and revoke a snapshot's read access — in a custom role assignable
// in that group alone. Not Disk Snapshot Contributor by hand: that role also lists storage account keys
// (Microsoft.Storage/storageAccounts/listkeys/action). Deployed by main.bicep at each resource group of
// agentSourceResourceGroups; TestAgentSnapshotRoleIsWhatTrackingCalls keeps the list equal to the calls.

@description('The agent\'s user-assigned identity (principal id).')
param principalId string

resource agentSnapshotsRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'standby-agent-snapshots')
  properties: {
    roleName: 'Standby agent snapshots ${uniqueString(resourceGroup().id)}'
    description: 'Lets Standby\'s agent track this resource group\'s managed disks with incremental snapshots, and nothing else.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.Compute/disks/read'
          'Microsoft.Compute/snapshots/read'
          'Microsoft.Compute/snapshots/write'
          'Microsoft.Compute/snapshots/delete'
          'Microsoft.Compute/snapshots/beginGetAccess/action'
          'Microsoft.Compute/snapshots/endGetAccess/action'
        ]
        notActions: []
      }
    ]
    assignableScopes: [resourceGroup().id]
  }
}

resource agentSnapshotsAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, agentSnapshotsRole.name)
  properties: { principalId: principalId, principalType: 'ServicePrincipal', roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', agentSnapshotsRole.name) }
}
