// Standby: everything the pipeline needs in Azure. Deploy at resource-group scope in the target region,
// with azd (`azd up` in infra/, see the README's "Deploy to Azure") or directly:
//   az deployment group create -g <rg> -f infra/main.bicep -p sourceLocation=<source region>
// The function app (Flex Consumption, custom handler) uses its system-assigned managed identity for every
// dependency (identity-based connection settings), so no key or connection string is stored in app
// settings; the peer site's API key is a Key Vault reference. The agent on the source VMs uses the
// user-assigned identity `agent`, which may only send to the change hub and write the journal container.
// On the control plane the app may deploy only into the recovery resource group (Contributor there), read
// the target account (managed disks import from it) and join the target network's subnets.
//
// Type-checked without a Bicep compiler: `go test ./shared/azure/armtypes/` reads every resource below and
// checks it against the published type definitions (../shared/reference/azure-types). Only GA apiVersions
// present there are used. No DNS suffix is written here: endpoints come from environment() and from the
// resources' own properties.

@description('Target region: functions, target disks, snapshots, state, Event Hubs, Service Bus, Key Vault.')
param location string = resourceGroup().location

@description('Source region: the cache storage account the agent writes the change journal to.')
@metadata({ azd: { type: 'location' } })
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

@description('A function key of the peer app\'s `peer` function, which opens the peer calls only (stored in this deployment\'s Key Vault; the app reads it through a Key Vault reference).')
@secure()
param peerApiKey string = ''

@description('HMAC-SHA256 key recovery plans sign their webhook actions with (stored in this deployment\'s Key Vault; the app reads it through a Key Vault reference). Empty: plans with webhooks are refused.')
@secure()
param webhookSecret string = ''

@description('NCRONTAB schedule of the cutpoints function.')
param cutpointsSchedule string = '0 */1 * * * *'

@description('The URL alerts are POSTed to, signed with webhookSecret (stored in this deployment\'s Key Vault: it may carry a token). Empty: alerts are events and log records only.')
@secure()
param alertWebhook string = ''

@description('NCRONTAB schedule of the alerts function, which delivers alerts to alertWebhook.')
param alertsSchedule string = '*/30 * * * * *'

@description('Flex Consumption: memory per instance (MB).')
@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048

@description('Flex Consumption: most instances the app scales out to.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Optional: an operator (user object id) given Key Vault Secrets Officer on the vault, to set or rotate the peer key. azd passes the signed-in user (AZURE_PRINCIPAL_ID).')
param operatorPrincipalId string = ''

@description('Optional: client id of the Microsoft Entra app registration that signs callers in (App Service authentication). Its app roles Standby.Operator, Standby.Reader and Standby.Peer are the roles at the identity door, /api/id/v1. Empty: function keys only.')
param entraClientId string = ''

@description('Resource group the failed-over VMs come up in (give it as each group spec\'s target.resourceGroup): the function app gets Contributor there and no control-plane role anywhere else.')
@minLength(1)
@maxLength(90)
param recoveryResourceGroupName string = '${resourceGroup().name}-asr'

@description('Create (or update) the recovery resource group in the target region. Set false when it exists and is owned elsewhere: updating it would replace its tags.')
param createRecoveryResourceGroup bool = true

@description('Optional: the source resource groups whose managed disks agents track (managed: sources). The agent identity gets a custom role in each with exactly the snapshot actions tracking takes.')
param agentSourceResourceGroups array = []

@description('Optional: consistency groups whose agents get an identity of their own (assign it to that group\'s VMs only). It may send to the change hub and read, create and list blobs only under \'<group>/\' in the journal container (a condition on its role assignment), and delete none. Names as the API takes them: lowercase letters, digits and hyphens. With any listed, the shared agent identity gets no data role.')
param agentGroups array = []

@description('Days the function app\'s logs are kept in its Log Analytics workspace.')
param logRetentionDays int = 30

@description('Optional: resource id of the target virtual network whose subnets failed-over NICs join, when it is outside the recovery resource group. The function app gets a custom role allowing only subnet join and read on it.')
param targetVirtualNetworkId string = ''

var suffix = uniqueString(resourceGroup().id)
var cacheName = take('${namePrefix}cache${suffix}', 24)
var targetName = take('${namePrefix}tgt${suffix}', 24)
var funcStorageName = take('${namePrefix}fn${suffix}', 24)
var appName = '${namePrefix}-func-${suffix}'
var peerKeySecret = 'peer-api-key'
var webhookKeySecret = 'plan-webhook-secret'
var alertWebhookSecret = 'alert-webhook-url'
var jobMaxDeliveryCount = 10

// Built-in role definition ids (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles).
var roles = {
  blobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // Storage Blob Data Owner
  blobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe' // Storage Blob Data Contributor
  queueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88' // Storage Queue Data Contributor
  tableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3' // Storage Table Data Contributor
  eventHubsDataSender: '2b629674-e913-4c01-ae53-ef4638d8f975' // Azure Event Hubs Data Sender
  eventHubsDataReceiver: 'a638d3c7-ab3a-418d-83e6-5f17a39d4fde' // Azure Event Hubs Data Receiver
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39' // Azure Service Bus Data Sender
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0' // Azure Service Bus Data Receiver
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6' // Key Vault Secrets User
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7' // Key Vault Secrets Officer
  reader: 'acdd72a7-3385-48ef-bd42-f606fba81ae7' // Reader
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb' // Monitoring Metrics Publisher
}

// --- Storage -------------------------------------------------------------------------------------------

// Cache account (source region): the change journal the agent writes and apply reads.
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
  properties: { publicAccess: 'None' }
}

// Payloads that failed verification (StandbyJournalContainer + '-quarantine'); written by apply only.
resource journalQuarantine 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: cacheBlobs
  name: 'journal-quarantine'
  properties: { publicAccess: 'None' }
}

// Target account (target region): target disks (page blobs), snapshots, state tables.
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

// The Functions host's own account (AzureWebJobsStorage: leases, checkpoints, timers) and the Flex
// Consumption deployment container.
resource funcStorage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: funcStorageName
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

resource funcBlobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: funcStorage
  name: 'default'
}

resource deployments 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: funcBlobs
  name: 'deployments'
  properties: { publicAccess: 'None' }
}

// --- Messaging -----------------------------------------------------------------------------------------

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

resource serviceBus 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: '${namePrefix}-sb-${suffix}'
  location: location
  sku: { name: 'Standard', tier: 'Standard' }
  properties: { disableLocalAuth: true, minimumTlsVersion: '1.2' }
}

resource jobs 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = {
  parent: serviceBus
  name: 'jobs'
  properties: {
    requiresSession: true
    lockDuration: 'PT1M'
    maxDeliveryCount: jobMaxDeliveryCount
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'PT10M'
    deadLetteringOnMessageExpiration: true
    defaultMessageTimeToLive: 'P14D'
  }
}

// serviceBusEndpoint is https://<namespace FQDN>:443/ — the FQDN is its host.
var eventHubsHost = split(split(eventHubs.properties.serviceBusEndpoint, '/')[2], ':')[0]
var serviceBusHost = split(split(serviceBus.properties.serviceBusEndpoint, '/')[2], ':')[0]

// --- Key Vault (the peer site's API key) ---------------------------------------------------------------

resource vault 'Microsoft.KeyVault/vaults@2025-05-01' = {
  name: take('${namePrefix}-kv-${suffix}', 24)
  location: location
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
  }
}

resource peerKey 'Microsoft.KeyVault/vaults/secrets@2025-05-01' = if (!empty(peerApiKey)) {
  parent: vault
  name: peerKeySecret
  properties: { value: peerApiKey, contentType: 'Standby peer API function key' }
}

resource webhookKey 'Microsoft.KeyVault/vaults/secrets@2025-05-01' = if (!empty(webhookSecret)) {
  parent: vault
  name: webhookKeySecret
  properties: { value: webhookSecret, contentType: 'Standby recovery plan webhook HMAC key' }
}

resource alertWebhookUrl 'Microsoft.KeyVault/vaults/secrets@2025-05-01' = if (!empty(alertWebhook)) {
  parent: vault
  name: alertWebhookSecret
  properties: { value: alertWebhook, contentType: 'Standby alert webhook URL' }
}

// --- Function app (Flex Consumption, Linux, custom handler) --------------------------------------------

resource plan 'Microsoft.Web/serverfarms@2024-11-01' = {
  name: '${namePrefix}-plan-${suffix}'
  location: location
  sku: { name: 'FC1', tier: 'FlexConsumption' }
  kind: 'functionapp'
  properties: { reserved: true }
}

resource app 'Microsoft.Web/sites@2024-11-01' = {
  name: appName
  location: location
  kind: 'functionapp,linux'
  tags: { 'azd-service-name': 'functions' } // azure.yaml's service name: azd deploys the package here
  identity: { type: 'SystemAssigned' }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${funcStorage.properties.primaryEndpoints.blob}${deployments.name}'
          authentication: { type: 'SystemAssignedIdentity' }
        }
      }
      runtime: { name: 'custom', version: '1.0' }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      // Flex Consumption sets the runtime in functionAppConfig: no FUNCTIONS_WORKER_RUNTIME or
      // FUNCTIONS_EXTENSION_VERSION here (the platform refuses them).
      appSettings: [
        { name: 'AzureWebJobsStorage__accountName', value: funcStorage.name }
        { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
        { name: 'StandbyTargetStorage__blobServiceUri', value: target.properties.primaryEndpoints.blob }
        { name: 'StandbyTargetStorage__tableServiceUri', value: target.properties.primaryEndpoints.table }
        { name: 'StandbyCacheStorage__blobServiceUri', value: cache.properties.primaryEndpoints.blob }
        { name: 'StandbyJournalContainer', value: journal.name }
        { name: 'StandbyEventHubs__fullyQualifiedNamespace', value: eventHubsHost }
        { name: 'StandbyChangeHub', value: changes.name }
        { name: 'StandbyApplyConsumerGroup', value: applyGroup.name }
        { name: 'StandbyServiceBus__fullyQualifiedNamespace', value: serviceBusHost }
        { name: 'StandbyJobQueue', value: jobs.name }
        { name: 'StandbyJobMaxDeliveryCount', value: string(jobMaxDeliveryCount) }
        { name: 'StandbyCutpointsSchedule', value: cutpointsSchedule }
        { name: 'StandbyAlertsSchedule', value: alertsSchedule }
        {
          name: 'StandbyAlertWebhook'
          value: empty(alertWebhook) ? '' : '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/${alertWebhookSecret})'
        }
        // Failed-over VMs come up through Azure Resource Manager in this subscription and region, as the
        // app's identity; managed disks import the point's VHD copies from the target account.
        { name: 'StandbyCompute', value: 'SubscriptionId=${subscription().subscriptionId};Location=${location}' }
        { name: 'StandbyTargetStorageAccountId', value: target.id }
        { name: 'StandbyRecoveryResourceGroup', value: recoveryResourceGroupName }
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: insights.properties.ConnectionString }
        { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'Authorization=AAD' }
        { name: 'StandbyPeerApi', value: peerApi }
        {
          name: 'StandbyPeerApiKey'
          value: empty(peerApiKey) ? '' : '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/${peerKeySecret})'
        }
        // The identity door trusts App Service authentication's principal only with this set (and the
        // platform's WEBSITE_AUTH_ENABLED).
        { name: 'StandbyEntraAuth', value: empty(entraClientId) ? 'false' : 'true' }
        {
          name: 'StandbyWebhookSecret'
          value: empty(webhookSecret) ? '' : '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/${webhookKeySecret})'
        }
      ]
    }
  }
}

// App Service authentication with Microsoft Entra ID: a bearer token for the app's audience is validated
// and its principal (with its app roles) passed to the app; requests without one pass on as they are,
// so function keys keep working (AllowAnonymous: authorization is the app's, per route and role).
resource auth 'Microsoft.Web/sites/config@2024-11-01' = if (!empty(entraClientId)) {
  parent: app
  name: 'authsettingsV2'
  properties: {
    platform: { enabled: true }
    globalValidation: { requireAuthentication: false, unauthenticatedClientAction: 'AllowAnonymous' }
    httpSettings: { requireHttps: true }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: { clientId: entraClientId, openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0' }
        validation: { allowedAudiences: [ 'api://${entraClientId}' ] }
      }
    }
    login: { tokenStore: { enabled: false } }
  }
}

// --- Role assignments: the function app's identity -----------------------------------------------------

// The Functions host on its own account: blobs (leases, Event Hubs checkpoints, the deployment package),
// queues and tables.
resource funcStorageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for role in [roles.blobDataOwner, roles.queueDataContributor, roles.tableDataContributor]: {
  scope: funcStorage
  name: guid(funcStorage.id, app.id, role)
  properties: { principalId: app.identity.principalId, principalType: 'ServicePrincipal', roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role) }
}]

// Target disks, snapshots and state.
resource targetRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for role in [roles.blobDataContributor, roles.tableDataContributor]: {
  scope: target
  name: guid(target.id, app.id, role)
  properties: { principalId: app.identity.principalId, principalType: 'ServicePrincipal', roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role) }
}]

// Managed disks import the point's VHD copies by the account's id (createOption Import with
// storageAccountId): ARM checks that the deploying identity may read the account. Read only: the data
// plane roles above are what reads and writes the blobs.
resource targetReaderRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: target
  name: guid(target.id, app.id, roles.reader)
  properties: { principalId: app.identity.principalId, principalType: 'ServicePrincipal', roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.reader) }
}

// The journal: read, quarantine, prune.
resource cacheRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: cache
  name: guid(cache.id, app.id, roles.blobDataContributor)
  properties: { principalId: app.identity.principalId, principalType: 'ServicePrincipal', roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.blobDataContributor) }
}

// apply's trigger reads the change hub (checkpoints go to AzureWebJobsStorage blobs, so no Data Owner).
resource changesReceiverRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: changes
  name: guid(changes.id, app.id, roles.eventHubsDataReceiver)
  properties: { principalId: app.identity.principalId, principalType: 'ServicePrincipal', roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventHubsDataReceiver) }
}

// The API sends jobs, the failover trigger receives them, the API peeks the dead-letter queue.
resource jobsRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for role in [roles.serviceBusDataSender, roles.serviceBusDataReceiver]: {
  scope: jobs
  name: guid(jobs.id, app.id, role)
  properties: { principalId: app.identity.principalId, principalType: 'ServicePrincipal', roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role) }
}]

// The Key Vault reference of StandbyPeerApiKey.
resource vaultSecretsUserRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: vault
  name: guid(vault.id, app.id, roles.keyVaultSecretsUser)
  properties: { principalId: app.identity.principalId, principalType: 'ServicePrincipal', roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser) }
}

resource vaultOperatorRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  scope: vault
  name: guid(vault.id, operatorPrincipalId, roles.keyVaultSecretsOfficer)
  properties: { principalId: operatorPrincipalId, roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer) }
}

// --- Failover: where the VMs come up ------------------------------------------------------------------

// A resource group can only be created at subscription scope: a module deployed at subscription() does
// it (infra/modules/recovery-group.bicep); the role goes on the group itself through a module at its
// scope. The app may deploy, read and delete there, and nowhere else on the control plane.
module recoveryGroup 'modules/recovery-group.bicep' = if (createRecoveryResourceGroup) {
  name: 'standby-recovery-group-${suffix}'
  scope: subscription()
  params: { name: recoveryResourceGroupName, location: location }
}

module recoveryRoles 'modules/recovery-roles.bicep' = {
  name: 'standby-recovery-roles-${suffix}'
  scope: resourceGroup(recoveryResourceGroupName)
  dependsOn: [recoveryGroup]
  params: { principalId: app.identity.principalId }
}

// Subnets of a network elsewhere: join and read, on that network only (infra/modules/subnet-join.bicep).
// ARM evaluates a module's scope in preflight even when its condition is false (Azure/bicep#1492), and
// split('', '/')[2] is out of bounds there: without a network the scope is a placeholder id's (this
// resource group's, never deployed to).
var placeholderNetworkId = '/subscriptions/${subscription().subscriptionId}/resourceGroups/${resourceGroup().name}/providers/Microsoft.Network/virtualNetworks/none'
var targetNetworkParts = split(empty(targetVirtualNetworkId) ? placeholderNetworkId : targetVirtualNetworkId, '/')
module subnetJoin 'modules/subnet-join.bicep' = if (!empty(targetVirtualNetworkId)) {
  name: 'standby-subnet-join-${suffix}'
  scope: resourceGroup(targetNetworkParts[2], targetNetworkParts[4])
  params: { virtualNetworkName: last(targetNetworkParts), principalId: app.identity.principalId }
}

// --- Logs ----------------------------------------------------------------------------------------------

// The app's logs (the handler's records, the host's traces and failures) go to Application Insights,
// stored in a Log Analytics workspace that keeps them logRetentionDays: without them a failover that
// failed at night leaves nothing to read. Local authentication is off: the host sends with the app's
// identity (APPLICATIONINSIGHTS_AUTHENTICATION_STRING), which publishes as Monitoring Metrics Publisher.
resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${namePrefix}-logs-${suffix}'
  location: location
  properties: { sku: { name: 'PerGB2018' }, retentionInDays: logRetentionDays }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: '${namePrefix}-insights-${suffix}'
  location: location
  kind: 'other'
  properties: { Application_Type: 'other', WorkspaceResourceId: logs.id, DisableLocalAuth: true, RetentionInDays: logRetentionDays }
}

resource insightsPublisherRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: insights
  name: guid(insights.id, app.id, roles.monitoringMetricsPublisher)
  properties: { principalId: app.identity.principalId, principalType: 'ServicePrincipal', roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher) }
}

// --- The agent's identity ------------------------------------------------------------------------------

// Assign it to each source VM and run the agent with AZURE_CLIENT_ID = its client id. It may only send
// to the change hub and write the journal container.
resource agent 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' = {
  name: '${namePrefix}-agent-${suffix}'
  location: sourceLocation
}

resource agentSenderRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (empty(agentGroups)) {
  scope: changes
  name: guid(changes.id, agent.id, roles.eventHubsDataSender)
  properties: { principalId: agent.properties.principalId, principalType: 'ServicePrincipal', roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventHubsDataSender) }
}

resource agentJournalRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (empty(agentGroups)) {
  scope: journal
  name: guid(journal.id, agent.id, roles.blobDataContributor)
  properties: { principalId: agent.properties.principalId, principalType: 'ServicePrincipal', roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.blobDataContributor) }
}

// Each listed group's own agent identity. Its journal rights are a custom role without delete, and the
// assignment's condition (ABAC, version 2.0) keeps every blob read, write and create under '<group>/'
// and every listing to that prefix: one VM's identity cannot touch another group's batches, and no agent
// can delete one. Overwriting its own group's blobs is still a write: what keeps applied batches as they
// were on Azure is the container's time-based retention policy (README, "Each group's own agent
// identity").
resource journalWriterRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (!empty(agentGroups)) {
  name: guid(resourceGroup().id, 'standby-journal-writer')
  properties: {
    roleName: 'Standby journal writer ${suffix}'
    description: 'Lets a Standby agent read, create and list change batches in the journal container, and delete none.'
    type: 'CustomRole'
    permissions: [
      {
        actions: []
        notActions: []
        dataActions: [
          'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'
          'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write'
          'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action'
        ]
        notDataActions: []
      }
    ]
    assignableScopes: [resourceGroup().id]
  }
}

resource groupAgents 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' = [for group in agentGroups: {
  name: '${namePrefix}-agent-${group}-${suffix}'
  location: sourceLocation
}]

resource groupAgentSenderRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (group, i) in agentGroups: {
  scope: changes
  name: guid(changes.id, groupAgents[i].id, roles.eventHubsDataSender)
  properties: { principalId: groupAgents[i].properties.principalId, principalType: 'ServicePrincipal', roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventHubsDataSender) }
}]

resource groupAgentJournalRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (group, i) in agentGroups: {
  scope: journal
  name: guid(journal.id, groupAgents[i].id, 'standby-journal-writer')
  properties: {
    principalId: groupAgents[i].properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: journalWriterRole.id
    conditionVersion: '2.0'
    condition: '((!(ActionMatches{\'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read\'} AND NOT SubOperationMatches{\'Blob.List\'}) AND !(ActionMatches{\'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write\'}) AND !(ActionMatches{\'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action\'})) OR (@Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path] StringStartsWith \'${group}/\')) AND ((!(ActionMatches{\'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read\'} AND SubOperationMatches{\'Blob.List\'})) OR (@Request[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:prefix] StringStartsWith \'${group}/\'))'
  }
}]

// managed: tracking: a custom role with the snapshot actions alone, in each source resource group named.
module agentSnapshots 'modules/agent-snapshots.bicep' = [for rg in agentSourceResourceGroups: {
  name: 'standby-agent-snapshots-${uniqueString(rg)}'
  scope: resourceGroup(rg)
  params: { principalId: agent.properties.principalId }
}]

// --- Outputs: what an operator needs to call the API and start an agent --------------------------------

output functionAppName string = app.name
output functionAppUrl string = 'https://${app.properties.defaultHostName}'
output apiBaseUrl string = 'https://${app.properties.defaultHostName}/api'
output agentIdentityClientId string = agent.properties.clientId
output agentIdentityResourceId string = agent.id
output groupAgentIdentities array = [for (group, i) in agentGroups: { group: group, clientId: groupAgents[i].properties.clientId, resourceId: groupAgents[i].id }]
output cacheBlobEndpoint string = cache.properties.primaryEndpoints.blob
output eventHubsNamespace string = eventHubsHost
output changeHub string = changes.name
output journalContainer string = journal.name
output keyVaultName string = vault.name
output recoveryResourceGroup string = recoveryResourceGroupName
