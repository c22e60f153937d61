// A failed-over VM's NIC may join a subnet of a virtual network outside the recovery resource group (a
// network mapping's target given by id). ARM then checks the deploying identity for
// Microsoft.Network/virtualNetworks/subnets/join/action on that subnet. No built-in role is that narrow
// (Network Contributor could change the network), so this defines a custom role with join and read only,
// assignable in the network's resource group, and assigns it to the function app on the network alone.
// Deployed by main.bicep at the network's resource group scope when targetVirtualNetworkId is given.

@description('Name of the target virtual network, in this deployment\'s resource group.')
param virtualNetworkName string

@description('The function app\'s system-assigned identity.')
param principalId string

resource vnet 'Microsoft.Network/virtualNetworks@2024-05-01' existing = {
  name: virtualNetworkName
}

resource subnetJoinRoleDefinition 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, virtualNetworkName, 'standby-subnet-join')
  properties: {
    roleName: 'Standby subnet join ${virtualNetworkName} ${uniqueString(resourceGroup().id, virtualNetworkName)}'
    description: 'Lets Standby\'s failed-over NICs join subnets of this virtual network, and nothing else.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.Network/virtualNetworks/read'
          'Microsoft.Network/virtualNetworks/subnets/read'
          'Microsoft.Network/virtualNetworks/subnets/join/action'
        ]
        notActions: []
      }
    ]
    assignableScopes: [resourceGroup().id]
  }
}

resource subnetJoinRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: vnet
  name: guid(vnet.id, principalId, subnetJoinRoleDefinition.name)
  properties: { principalId: principalId, principalType: 'ServicePrincipal', roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', subnetJoinRoleDefinition.name) }
}
