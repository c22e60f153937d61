// Standby: everything the pipeline needs in Azure. Deploy at resource-group scope in the target region:
//   az deployment group create -g <rg> -f infra/main.bicep -p sourceLocation=<source region>
// The function app uses its managed identity for every dependency (identity-based connection settings),
// so no key or connection string is stored in app settings.

@description('Target region: functions, target disks, snapshots, state, Event Hubs, Service Bus.')
param location string = resourceGroup().location

@description('Source region: the cache storage account the agent writes the change journal to.')
param sourceLocation string

@description('Short prefix for resource names (lowercase letters and digits).')
@maxLength(11)
param namePrefix string = 'standby'

@description('Partitions of the change stream: one group always lands in one partition.')
@minValue(2)
@maxValue(32)
param changePartitions int = 8

@description('The other region\'s Standby API root (https://<app>.azurewebsites.net/api), for reprotect and failback. The reverse deployment is this template deployed in the source region with the regions swapped; each names the other here.')
param peerApi string = ''

@description('Function key of the peer\'s API.')
@secure()
param peerApiKey string = ''

@description('NCRONTAB schedule of the cutpoints function.')
param cutpointsSchedule string = '0 */1 * * * *'

var suffix = uniqueString(resourceGroup().id)
var cacheName = take('${namePrefix}cache${suffix}', 24)
var targetName = take('${namePrefix}tgt${suffix}', 24)
var funcStorageName = take('${namePrefix}fn${suffix}', 24)

resource cache 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: cacheName
  location: sourceLocation
  sku: { name: 'Standard_LRS' }
  kind: 'StorageV2'
  properties: {
    minimumTlsVersion: 'TLS1_2'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    supportsHttpsTrafficOnly: true
  }
}

resource cacheBlobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: cache
  name: 'default'
}

resource journal 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: cacheBlobs
  name: 'journal'
}

resource target 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: targetName
  location: location
  sku: { name: 'Standard_LRS' }
  kind: 'StorageV2'
  properties: {
    minimumTlsVersion: 'TLS1_2'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    supportsHttpsTrafficOnly: true
  }
}

resource funcStorage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: funcStorageName
  location: location
  sku: { name: 'Standard_LRS' }
  kind: 'StorageV2'
  properties: {
    minimumTlsVersion: 'TLS1_2'
    allowBlobPublicAccess: false
    supportsHttpsTrafficOnly: true
  }
}

resource eventHubs 'Microsoft.EventHub/namespaces@2024-01-01' = {
  name: '${namePrefix}-eh-${suffix}'
  location: location
  sku: { name: 'Standard', tier: 'Standard', capacity: 1 }
  properties: { disableLocalAuth: true, minimumTlsVersion: '1.2' }
}

resource changes 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' = {
  parent: eventHubs
  name: 'changes'
  properties: {
    partitionCount: changePartitions
    messageRetentionInDays: 1
  }
}

resource applyGroup 'Microsoft.EventHub/namespaces/eventhubs/consumergroups@2024-01-01' = {
  parent: changes
  name: 'apply'
}

resource serviceBus 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' = {
  name: '${namePrefix}-sb-${suffix}'
  location: location
  sku: { name: 'Standard', tier: 'Standard' }
  properties: { disableLocalAuth: true, minimumTlsVersion: '1.2' }
}

resource jobs 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' = {
  parent: serviceBus
  name: 'jobs'
  properties: {
    requiresSession: true
    lockDuration: 'PT1M'
    maxDeliveryCount: 10
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'PT10M'
    deadLetteringOnMessageExpiration: true
    defaultMessageTimeToLive: 'P14D'
  }
}

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${namePrefix}-logs-${suffix}'
  location: location
  properties: { sku: { name: 'PerGB2018' }, retentionInDays: 30 }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: '${namePrefix}-ai-${suffix}'
  location: location
  kind: 'web'
  properties: { Application_Type: 'web', WorkspaceResourceId: logs.id }
}

resource plan 'Microsoft.Web/serverfarms@2023-12-01' = {
  name: '${namePrefix}-plan-${suffix}'
  location: location
  sku: { name: 'EP1', tier: 'ElasticPremium' }
  kind: 'elastic'
  properties: { reserved: true, maximumElasticWorkerCount: 20 }
}

resource app 'Microsoft.Web/sites@2023-12-01' = {
  name: '${namePrefix}-func-${suffix}'
  location: location
  kind: 'functionapp,linux'
  identity: { type: 'SystemAssigned' }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      linuxFxVersion: ''
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      appSettings: [
        { name: 'FUNCTIONS_EXTENSION_VERSION', value: '~4' }
        { name: 'FUNCTIONS_WORKER_RUNTIME', value: 'custom' }
        { name: 'AzureWebJobsStorage__accountName', value: funcStorage.name }
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: insights.properties.ConnectionString }
        { name: 'StandbyTargetStorage__blobServiceUri', value: target.properties.primaryEndpoints.blob }
        { name: 'StandbyTargetStorage__tableServiceUri', value: target.properties.primaryEndpoints.table }
        { name: 'StandbyCacheStorage__blobServiceUri', value: cache.properties.primaryEndpoints.blob }
        { name: 'StandbyEventHubs__fullyQualifiedNamespace', value: '${eventHubs.name}.servicebus.windows.net' }
        { name: 'StandbyServiceBus__fullyQualifiedNamespace', value: '${serviceBus.name}.servicebus.windows.net' }
        { name: 'StandbyChangeHub', value: changes.name }
        { name: 'StandbyApplyConsumerGroup', value: applyGroup.name }
        { name: 'StandbyJobQueue', value: jobs.name }
        { name: 'StandbyCutpointsSchedule', value: cutpointsSchedule }
        { name: 'StandbyPeerApi', value: peerApi }
        { name: 'StandbyPeerApiKey', value: peerApiKey }
      ]
    }
  }
}

// Built-in role definition ids.
var roles = {
  blobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  blobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  tableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  queueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  eventHubsDataSender: '2b629674-e913-4c01-ae53-ef4638d8f975'
  eventHubsDataReceiver: 'a638d3c7-ab3a-418d-83e6-5f17a39d4fde'
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
}

resource targetBlobRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: target
  name: guid(target.id, app.id, roles.blobDataContributor)
  properties: { principalId: app.identity.principalId, principalType: 'ServicePrincipal', roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.blobDataContributor) }
}

resource targetTableRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: target
  name: guid(target.id, app.id, roles.tableDataContributor)
  properties: { principalId: app.identity.principalId, principalType: 'ServicePrincipal', roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.tableDataContributor) }
}

resource cacheBlobRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: cache
  name: guid(cache.id, app.id, roles.blobDataContributor)
  properties: { principalId: app.identity.principalId, principalType: 'ServicePrincipal', roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.blobDataContributor) }
}

resource funcStorageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for role in [roles.blobDataOwner, roles.queueDataContributor, roles.tableDataContributor]: {
  scope: funcStorage
  name: guid(funcStorage.id, app.id, role)
  properties: { principalId: app.identity.principalId, principalType: 'ServicePrincipal', roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role) }
}]

resource eventHubsRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for role in [roles.eventHubsDataSender, roles.eventHubsDataReceiver]: {
  scope: eventHubs
  name: guid(eventHubs.id, app.id, role)
  properties: { principalId: app.identity.principalId, principalType: 'ServicePrincipal', roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role) }
}]

resource serviceBusRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for role in [roles.serviceBusDataSender, roles.serviceBusDataReceiver]: {
  scope: serviceBus
  name: guid(serviceBus.id, app.id, role)
  properties: { principalId: app.identity.principalId, principalType: 'ServicePrincipal', roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role) }
}]

output functionAppName string = app.name
output apiBaseUrl string = 'https://${app.properties.defaultHostName}/api/v1'
output cacheAccount string = cache.name
output eventHubsNamespace string = '${eventHubs.name}.servicebus.windows.net'
